/**
 * Builds new ONNX graphs on top of a model's own nodes and weights: fresh unique tensor names,
 * constants, and the few ops whose signature changed across opsets (ReduceSum, Unsqueeze…),
 * emitted in the form the model's opset expects.
 */
import { OnnxGraph } from '../onnx/graph';
import { AttributeProto, AttributeType, concatParts, DataType, encodeModelParts, NodeProto, TensorProto, ValueInfoProto } from '../onnx/proto';
import { floatTensor, int64Tensor } from '../onnx/tensor';
import { byteLength } from '../onnx/weights';
import type { CompiledGraph } from './forward';

export type AttrValue = number | number[] | string | TensorProto | { float: number } | { floats: number[] };

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  /** Element types of new tensors that are not float. */
  private readonly types = new Map<string, number>();
  /** MaxPool nodes given an Indices output, by their original proto. */
  private readonly switches = new Map<NodeProto, string>();
  private counter = 0;
  private readonly taken: Set<string>;

  constructor(readonly source: OnnxGraph) {
    this.taken = new Set([...source.producer.keys(), ...source.initializers.keys(), source.inputName]);
  }

  get opset(): number {
    return this.source.opset;
  }

  fresh(hint: string): string {
    let name: string;
    do name = `cs/${hint}_${this.counter++}`;
    while (this.taken.has(name));
    this.taken.add(name);
    return name;
  }

  /** Adds a node and returns its first output. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1): string {
    return this.opMulti(opType, inputs, attrs, outputs)[0];
  }

  opMulti(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()));
    if (opType === 'ArgMax' || opType === 'ArgMin') this.types.set(outs[0], DataType.INT64);
    this.nodes.push({ opType, name: outs[0], input: inputs, output: outs, attribute: toAttributes(attrs) });
    return outs;
  }

  /** Declares the element type of a new tensor that is not float (needed for graph outputs). */
  typed(name: string, elemType: DataType): string {
    this.types.set(name, elemType);
    return name;
  }

  /** Copies an original node unchanged (its tensor names stay). */
  copy(node: NodeProto): void {
    this.nodes.push(node);
  }

  /**
   * The Indices output of a copied MaxPool node (added to it if the model doesn't use it):
   * each output's switch, flat over the batch's N·C·H·W.
   */
  poolIndices(node: NodeProto): string {
    if (node.output[1]) return node.output[1];
    let indices = this.switches.get(node);
    if (!indices) {
      const at = this.nodes.indexOf(node);
      if (at < 0) throw new Error(`MaxPool node "${node.name}" was not copied into the graph`);
      indices = this.fresh('switches');
      this.types.set(indices, DataType.INT64);
      this.nodes[at] = { ...node, output: [node.output[0], indices] };
      this.switches.set(node, indices);
    }
    return indices;
  }

  floats(values: ArrayLike<number>, dims: number[] = [values.length], hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push(floatTensor(name, dims, values));
    return name;
  }

  /** A float initializer that shares `values` (not copied: leave it unchanged). */
  floatArray(values: Float32Array, dims: number[], hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
    return name;
  }

  ints(values: number[], dims: number[] = [values.length], hint = 'shape'): string {
    const name = this.fresh(hint);
    this.initializers.push(int64Tensor(name, dims, values));
    return name;
  }

  scalar(value: number): string {
    return this.floats([value], []);
  }

  reshape(x: string, shape: number[]): string {
    return this.op('Reshape', [x, this.ints(shape)]);
  }

  reduceSum(x: string, axes: number[], keepdims = 1): string {
    return this.opset >= 13 ? this.op('ReduceSum', [x, this.ints(axes)], { keepdims }) : this.op('ReduceSum', [x], { axes, keepdims });
  }

  reduceMean(x: string, axes: number[], keepdims = 1): string {
    return this.opset >= 18 ? this.op('ReduceMean', [x, this.ints(axes)], { keepdims }) : this.op('ReduceMean', [x], { axes, keepdims });
  }

  reduceMax(x: string, axes: number[], keepdims = 1): string {
    return this.opset >= 18 ? this.op('ReduceMax', [x, this.ints(axes)], { keepdims }) : this.op('ReduceMax', [x], { axes, keepdims });
  }

  /** Zeros [N, …shape], N the first dimension of `like` (a batch of signals). */
  zeros(like: string, shape: number[]): string {
    const items = this.slice(this.op('Shape', [like]), [0], [1], [0]);
    return this.op('ConstantOfShape', [this.op('Concat', [items, this.ints(shape)], { axis: 0 })]);
  }

  slice(x: string, starts: number[], ends: number[], axes: number[]): string {
    return this.op('Slice', [x, this.ints(starts), this.ints(ends), this.ints(axes)]);
  }

  /** Zero padding (positive) or cropping (negative) per axis: [begin…, end…] as ONNX Pad. */
  pad(x: string, pads: number[]): string {
    if (pads.every((p) => p === 0)) return x;
    return this.op('Pad', [x, this.ints(pads)], { mode: 'constant' });
  }

  /**
   * Serialises the model: the source's weights plus what was added, with the given I/O. Where the
   * source shares its weights (OnnxGraph.shareWeights), the large ones are references into that
   * file unless `inline`.
   */
  build(inputs: ValueInfoProto[], outputs: string[], extraInitializers: TensorProto[] = [], { inline = false } = {}): CompiledGraph {
    const used = new Set(this.nodes.flatMap((n) => n.input));
    const shared = inline ? undefined : this.source.sharedWeights;
    /** The bytes of each weight referred to in the shared file, by name. */
    const referred = new Map<string, number>();
    const weights = [...this.source.initializers.values()]
      .filter((t) => used.has(t.name ?? ''))
      .map((t) => {
        const reference = shared?.reference(t);
        if (reference) referred.set(t.name!, byteLength(t));
        return reference ?? t;
      });
    const { parts, bytes } = encodeModelParts({
      irVersion: this.source.proto.irVersion ?? 8,
      producerName: 'convscope',
      opsetImport: this.source.proto.opsetImport,
      graph: {
        name: 'convscope',
        node: this.nodes,
        initializer: [...weights, ...this.initializers, ...extraInitializers],
        input: inputs,
        output: outputs.map((name) => ({ name, type: { tensorType: { elemType: this.elemType(name) } } })),
      },
    });
    const graph = {
      parts,
      bytes,
      outputs,
      get model() {
        return concatParts(parts, bytes);
      },
    };
    if (referred.size === 0) return graph;
    const constants = [...weights, ...this.initializers, ...extraInitializers].map((t) => t.name ?? '');
    const sum = (names: Iterable<string>) => [...names].reduce((n, name) => n + referred.get(name)!, 0);
    return Object.assign(graph, { sharedWeights: shared, sharedBytes: sum(referred.keys()), foldedBytes: sum(this.folded(constants, referred)) });
  }

  /**
   * Which of the `shared` weights ONNX Runtime copies: it folds a node whose inputs are all
   * constant (a weight's Transpose in a backward rule) into a new weight of its own.
   */
  private folded(constants: string[], shared: Map<string, number>): Set<string> {
    const constant = new Set(constants);
    const folded = new Set<string>();
    for (const node of this.nodes) {
      const inputs = node.input.filter(Boolean);
      if (!inputs.every((i) => constant.has(i))) continue;
      node.output.forEach((o) => constant.add(o));
      for (const i of inputs) if (shared.has(i)) folded.add(i);
    }
    return folded;
  }

  private elemType(name: string): number {
    return this.types.get(name) ?? this.source.elemType.get(name) ?? DataType.FLOAT;
  }
}

/** A float input with a dynamic first (batch) dimension. */
export function batchInput(name: string, perItem: (number | null)[], elemType = DataType.FLOAT, batch = 'N'): ValueInfoProto {
  const dim = [{ dimParam: batch }, ...perItem.map((d) => (d === null ? { dimParam: `${name}_d` } : { dimValue: d }))];
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

export function toAttributes(attrs: Record<string, AttrValue>): AttributeProto[] {
  return Object.entries(attrs).map(([name, v]) => {
    if (typeof v === 'number') return { name, type: AttributeType.INT, i: v };
    if (typeof v === 'string') return { name, type: AttributeType.STRING, s: Buffer.from(v) };
    if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
    if ('float' in v) return { name, type: AttributeType.FLOAT, f: v.float };
    if ('floats' in v) return { name, type: AttributeType.FLOATS, floats: v.floats };
    return { name, type: AttributeType.TENSOR, t: v };
  });
}

/** The original nodes needed to compute `tensors` from the image input, in order. */
export function ancestors(graph: OnnxGraph, tensors: string[]): NodeProto[] {
  const needed = new Set<string>(tensors);
  const keep: NodeProto[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i];
    if (node.proto.output.some((o) => needed.has(o))) {
      keep.push(node.proto);
      for (const inp of node.reads) needed.add(inp);
    }
  }
  return keep.reverse();
}
