/** Filter weights: one slice of a Conv, Gemm or MatMul weight tensor per output unit. */
import { attrInt } from '../onnx/graph';
import { toFloat32 } from '../onnx/tensor';
import type { Layer, Model } from '../model';

export interface LayerWeights {
  /** Shape of one filter: [C/groups, kh, kw] for convs, [inputs] for dense units. */
  filterShape: number[];
  count: number;
  /** Largest |w| over the whole layer: the common scale of its pictures. */
  maxAbs: number;
  filter(index: number): Float32Array;
  /** True for convs that read the image directly: their kernels are pictures (ZF Fig. 6). */
  readsImage: boolean;
}

const cache = new WeakMap<Layer, LayerWeights | null>();

export function layerWeights(model: Model, layer: Layer): LayerWeights | null {
  if (!cache.has(layer)) cache.set(layer, computeWeights(model, layer));
  return cache.get(layer)!;
}

function computeWeights(model: Model, layer: Layer): LayerWeights | null {
  const p = layer.node.proto;
  const tensor = model.graph.initializers.get(p.input[1]);
  if (!tensor || !['Conv', 'Gemm', 'MatMul'].includes(layer.op)) return null;
  const dims = (tensor.dims ?? []).map(Number);
  const data = toFloat32(tensor);
  let maxAbs = 0;
  for (const v of data) maxAbs = Math.max(maxAbs, Math.abs(v));
  if (layer.op === 'Conv') {
    const [m, ...filterShape] = dims;
    const size = filterShape.reduce((a, b) => a * b, 1);
    return {
      filterShape,
      count: m,
      maxAbs,
      filter: (i) => data.subarray(i * size, (i + 1) * size),
      readsImage: model.graph.dataInputs(layer.node)[0] === model.inputName,
    };
  }
  // Dense: y = x·B (MatMul, Gemm) or x·Bᵀ (Gemm with transB = 1).
  const transposed = layer.op === 'Gemm' && attrInt(p, 'transB', 0) === 1;
  const [rows, cols] = dims;
  const inputs = transposed ? cols : rows;
  const count = transposed ? rows : cols;
  return {
    filterShape: [inputs],
    count,
    maxAbs,
    filter: (i) => (transposed ? data.subarray(i * cols, (i + 1) * cols) : Float32Array.from({ length: rows }, (_, r) => data[r * cols + i])),
    readsImage: false,
  };
}
