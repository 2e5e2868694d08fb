/**
 * What each ONNX op is, for the model browser: its layer kind and how it moves the
 * receptive field. (How each op is run backwards lives in src/compiler/rules.ts.)
 */
import { attrInts, attrString, GraphNode, OnnxGraph } from './graph';

export enum LayerKind {
  INPUT = 'INPUT',
  CONV = 'CONV',
  RELU = 'RELU',
  ACTIVATION = 'ACTIVATION',
  POOL = 'POOL',
  NORM = 'NORM',
  DENSE = 'DENSE',
  MERGE = 'MERGE',
  RESHAPE = 'RESHAPE',
  DROPOUT = 'DROPOUT',
  SOFTMAX = 'SOFTMAX',
  OTHER = 'OTHER',
}

const KINDS: Record<string, LayerKind> = {
  Conv: LayerKind.CONV,
  ConvTranspose: LayerKind.CONV,
  Relu: LayerKind.RELU,
  Clip: LayerKind.ACTIVATION,
  LeakyRelu: LayerKind.ACTIVATION,
  PRelu: LayerKind.ACTIVATION,
  Sigmoid: LayerKind.ACTIVATION,
  Tanh: LayerKind.ACTIVATION,
  Elu: LayerKind.ACTIVATION,
  HardSigmoid: LayerKind.ACTIVATION,
  HardSwish: LayerKind.ACTIVATION,
  MaxPool: LayerKind.POOL,
  AveragePool: LayerKind.POOL,
  GlobalAveragePool: LayerKind.POOL,
  GlobalMaxPool: LayerKind.POOL,
  LRN: LayerKind.NORM,
  BatchNormalization: LayerKind.NORM,
  InstanceNormalization: LayerKind.NORM,
  Gemm: LayerKind.DENSE,
  MatMul: LayerKind.DENSE,
  Concat: LayerKind.MERGE,
  Add: LayerKind.MERGE,
  Sum: LayerKind.MERGE,
  Flatten: LayerKind.RESHAPE,
  Reshape: LayerKind.RESHAPE,
  Squeeze: LayerKind.RESHAPE,
  Unsqueeze: LayerKind.RESHAPE,
  Dropout: LayerKind.DROPOUT,
  Softmax: LayerKind.SOFTMAX,
  LogSoftmax: LayerKind.SOFTMAX,
};

export function layerKind(op: string): LayerKind {
  return KINDS[op] ?? LayerKind.OTHER;
}

/** Ops that see a sliding window of their input. */
const WINDOWED = new Set(['Conv', 'MaxPool', 'AveragePool', 'LpPool']);
/** Ops after which a unit sees the whole image. */
const GLOBAL = new Set(['GlobalAveragePool', 'GlobalMaxPool', 'Flatten', 'Reshape', 'Gemm', 'MatMul', 'Softmax', 'LogSoftmax', 'Squeeze']);

export interface Window {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  padsBegin: [number, number];
  padsEnd: [number, number];
}

/** Along one axis, how many input rows `n` consecutive outputs of a window op read: (n−1)·s + d·(k−1) + 1. */
export function reach(n: number, kernel: number, stride: number, dilation = 1): number {
  return (n - 1) * stride + dilation * (kernel - 1) + 1;
}

/** The sliding window of a Conv or pool applied to an input of spatial size [h, w]. */
export function windowOf(graph: OnnxGraph, node: GraphNode, inputHW: [number, number]): Window {
  const p = node.proto;
  let kernel = attrInts(p, 'kernel_shape');
  if (!kernel && node.op === 'Conv') {
    const weight = graph.initializers.get(p.input[1]);
    kernel = weight?.dims?.slice(2).map(Number);
  }
  if (!kernel || kernel.length !== 2) throw new Error(`${node.op} "${node.name}" is not a 2-D window op`);
  const strides = attrInts(p, 'strides') ?? [1, 1];
  const dilations = attrInts(p, 'dilations') ?? [1, 1];
  let pads = attrInts(p, 'pads') ?? [0, 0, 0, 0];
  const autoPad = attrString(p, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') pads = [0, 0, 0, 0];
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = [0, 0, 0, 0];
    for (let a = 0; a < 2; a++) {
      const out = Math.ceil(inputHW[a] / strides[a]);
      const total = Math.max(0, (out - 1) * strides[a] + (kernel[a] - 1) * dilations[a] + 1 - inputHW[a]);
      const small = Math.floor(total / 2);
      pads[a] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[a + 2] = total - pads[a];
    }
  }
  return {
    kernel: [kernel[0], kernel[1]],
    strides: [strides[0], strides[1]],
    dilations: [dilations[0], dilations[1]],
    padsBegin: [pads[0], pads[1]],
    padsEnd: [pads[2], pads[3]],
  };
}

/** Receptive field of the units of one tensor, per axis [y, x], in input pixels. */
export interface ReceptiveField {
  size: [number, number];
  stride: [number, number];
  /** Input coordinate of the first pixel seen by unit (0, 0); negative inside the padding. */
  offset: [number, number];
  /** True when every unit sees the whole image (after dense, flatten, global pooling). */
  global: boolean;
}

/**
 * Receptive fields of every activation, propagated from the input: a window op grows the
 * size by (k-1)·dilation·stride_in and shifts the offset by -pad·stride_in; an op with several
 * inputs (Concat, Add) sees the union of theirs.
 */
export function receptiveFields(graph: OnnxGraph, shapes: Map<string, number[]>): Map<string, ReceptiveField> {
  const rf = new Map<string, ReceptiveField>();
  const [, h, w] = shapes.get(graph.inputName) ?? [];
  rf.set(graph.inputName, { size: [1, 1], stride: [1, 1], offset: [0, 0], global: false });
  const whole: ReceptiveField = { size: [h, w], stride: [h, w], offset: [0, 0], global: true };
  for (const node of graph.dataNodes()) {
    const inputs = graph
      .dataInputs(node)
      .map((i) => rf.get(i))
      .filter((r): r is ReceptiveField => !!r);
    let out: ReceptiveField;
    if (inputs.length === 0) {
      // It reads the image only through a subgraph (If, Loop): assume it may see all of it.
      for (const o of node.proto.output) if (graph.dataPath.has(o)) rf.set(o, whole);
      continue;
    }
    const outShape = shapes.get(node.proto.output[0]);
    if (inputs.some((r) => r.global) || GLOBAL.has(node.op) || (outShape && outShape.length !== 3)) {
      out = whole;
    } else if (WINDOWED.has(node.op)) {
      const inShape = shapes.get(graph.dataInputs(node)[0]);
      const win = windowOf(graph, node, [inShape?.[2] ?? 0, inShape?.[3] ?? 0]);
      const r = inputs[0];
      out = {
        size: [0, 1].map((a) => r.size[a] + (win.kernel[a] - 1) * win.dilations[a] * r.stride[a]) as [number, number],
        stride: [0, 1].map((a) => r.stride[a] * win.strides[a]) as [number, number],
        offset: [0, 1].map((a) => r.offset[a] - win.padsBegin[a] * r.stride[a]) as [number, number],
        global: false,
      };
    } else {
      out = union(inputs);
    }
    for (const o of node.proto.output) if (graph.dataPath.has(o)) rf.set(o, out);
  }
  return rf;
}

function union(fields: ReceptiveField[]): ReceptiveField {
  const axis = (a: number) => {
    const start = Math.min(...fields.map((r) => r.offset[a]));
    const end = Math.max(...fields.map((r) => r.offset[a] + r.size[a]));
    return { start, size: end - start, stride: Math.max(...fields.map((r) => r.stride[a])) };
  };
  const y = axis(0);
  const x = axis(1);
  return { size: [y.size, x.size], stride: [y.stride, x.stride], offset: [y.start, x.start], global: false };
}

/** The input-pixel box seen by unit (y, x), clipped to the image. */
export function unitBox(rf: ReceptiveField, y: number, x: number, imageHW: [number, number]) {
  if (rf.global) return { x: 0, y: 0, width: imageHW[1], height: imageHW[0] };
  const y0 = rf.offset[0] + y * rf.stride[0];
  const x0 = rf.offset[1] + x * rf.stride[1];
  const top = Math.max(0, y0);
  const left = Math.max(0, x0);
  const bottom = Math.min(imageHW[0], y0 + rf.size[0]);
  const right = Math.min(imageHW[1], x0 + rf.size[1]);
  return { x: left, y: top, width: Math.max(0, right - left), height: Math.max(0, bottom - top) };
}
