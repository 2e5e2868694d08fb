/**
 * Occlusion sensitivity (Zeiler & Fergus §4.2, Fig. 7) through the engine. A grey square is slid
 * over the PREPROCESSED input tensor (every channel inside it set to the fill value) and, per
 * occluder position, the compiled occlusion graph (compiler/occlusion.ts) gives the layer's
 * per-channel totals and the class probabilities, reduced at once to the three maps of Fig. 7.
 *
 * Grid: occluder positions y0 = i·stride for i = 0 … floor((H − size) / stride), likewise x0, so
 * height = floor((H − size)/stride) + 1 and width = floor((W − size)/stride) + 1, row-major; the
 * square always lies inside the image, and pixels past the last position (when stride does not
 * divide H − size) are never covered.
 *
 * Positions are streamed through the graph's micro-batcher at most two batches at a time (one
 * running, one queued), so memory stays bounded by the batch size whatever the grid, and other
 * requests' work on the same graph is interleaved rather than queued behind the whole grid.
 * Occluder positions are item parameters, not images: one copy of the image serves a batch.
 */
import { compileOcclusion, OCCLUSION_INPUTS } from '../compiler/occlusion';
import { OnnxGraph } from '../onnx/graph';
import { Engine, EngineModel, graphKey, PreparedImage, split, uniqueImages } from './engine';

export interface OcclusionModel extends EngineModel {
  graph: OnnxGraph;
}

export interface OcclusionRequest {
  /** The activation tensor whose strongest feature map is followed, and its per-image shape. */
  layerTensor: string;
  layerShape: number[];
  image: PreparedImage;
  size: number;
  stride: number;
  /** Preprocessed fill value per input channel. */
  fill: number[];
  /** Class whose probability is mapped; default: the unoccluded image's top class. */
  targetClass?: number;
  /** Positions per ORT run: the engine's largest batch for this model. */
  batch: number;
  /** Called with the number of positions done, after each batch. */
  onProgress?: (done: number, total: number) => void;
}

export interface OcclusionResult {
  /** Grid of occluder positions: width × height. */
  width: number;
  height: number;
  /** The layer's strongest feature map on the unoccluded image (largest max; first on ties). */
  channel: number;
  channelMax: number;
  /** Unoccluded: that map's total, and the class probabilities. */
  baselineTotal: number;
  baselineProbabilities: Float32Array;
  targetClass: number;
  /** Per position, row-major [height · width]: (b) the map's total, (d) the target's probability, (e) the top class. */
  activation: Float32Array;
  probability: Float32Array;
  topClass: Float32Array;
}

interface Item {
  image: PreparedImage;
  /** The occluder's square; size 0 = none (the unoccluded image). */
  y0: number;
  x0: number;
  size: number;
  fill: number[];
}

interface ItemResult {
  sums: Float32Array;
  maxes: Float32Array;
  probabilities: Float32Array;
}

export function occlusionGrid(height: number, width: number, size: number, stride: number) {
  return { height: Math.floor((height - size) / stride) + 1, width: Math.floor((width - size) / stride) + 1 };
}

/** Index of the first largest value. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** The batcher is shared by every request for (model, layer): its closure holds nothing of a request. */
function runItem(engine: Engine, model: OcclusionModel, layerTensor: string, layerShape: number[], item: Item): Promise<ItemResult> {
  const key = graphKey(model, `occlusion/${layerTensor}`);
  const [C, H, W] = model.inputShape;
  return engine
    .batcher<Item, ItemResult>(key, model.maxBatch, async (items) => {
      const loaded = await engine.load(key, () => compileOcclusion(model.graph, model.inputShape, layerTensor, layerShape));
      const { Tensor } = engine.runtime;
      const { images, itemImage } = uniqueImages(items.map((item) => item.image));
      const N = items.length;
      const rows = new Float32Array(N * H);
      const cols = new Float32Array(N * W);
      const fill = new Float32Array(N * C);
      items.forEach((it, n) => {
        rows.fill(1, n * H + it.y0, n * H + it.y0 + it.size);
        cols.fill(1, n * W + it.x0, n * W + it.x0 + it.size);
        fill.set(it.fill, n * C);
      });
      const out = await engine.run(
        loaded,
        {
          [OCCLUSION_INPUTS.images]: engine.stack(model, images),
          [OCCLUSION_INPUTS.image]: new Tensor('int64', BigInt64Array.from(itemImage, BigInt), [N]),
          [OCCLUSION_INPUTS.rows]: new Tensor('float32', rows, [N, 1, H, 1]),
          [OCCLUSION_INPUTS.cols]: new Tensor('float32', cols, [N, 1, 1, W]),
          [OCCLUSION_INPUTS.fill]: new Tensor('float32', fill, [N, C, 1, 1]),
        },
        N,
      );
      const [sums, maxes, probabilities] = loaded.outputs.map((name) => split(out[name], N));
      return items.map((_, n) => ({ sums: sums[n], maxes: maxes[n], probabilities: probabilities[n] }));
    })
    .submit(item);
}

export async function occlude(engine: Engine, model: OcclusionModel, req: OcclusionRequest): Promise<OcclusionResult> {
  const [, H, W] = model.inputShape;
  const { height, width } = occlusionGrid(H, W, req.size, req.stride);
  const total = height * width;
  const run = (item: Item) => runItem(engine, model, req.layerTensor, req.layerShape, item);
  const base: Item = { image: req.image, y0: 0, x0: 0, size: 0, fill: req.fill };
  const baseline = await run(base);
  const channel = argmax(baseline.maxes);
  const targetClass = req.targetClass ?? argmax(baseline.probabilities);
  if (targetClass < 0 || targetClass >= baseline.probabilities.length) {
    throw new RangeError(`target class ${targetClass} is outside the model's ${baseline.probabilities.length} classes`);
  }
  const activation = new Float32Array(total);
  const probability = new Float32Array(total);
  const topClass = new Float32Array(total);
  const record = (p: number, r: ItemResult) => {
    activation[p] = r.sums[channel];
    probability[p] = r.probabilities[targetClass];
    topClass[p] = argmax(r.probabilities);
  };

  const batch = Math.max(1, req.batch);
  const pending: Promise<number>[] = [];
  let done = 0;
  for (let start = 0; start < total; start += batch) {
    const end = Math.min(total, start + batch);
    const chunk: Promise<void>[] = [];
    for (let p = start; p < end; p++) {
      const y0 = Math.floor(p / width) * req.stride;
      const x0 = (p % width) * req.stride;
      chunk.push(run({ ...base, y0, x0, size: req.size }).then((r) => record(p, r)));
    }
    const submitted = Promise.all(chunk).then(() => end - start);
    // Awaited below, in order: one that fails (OVERLOADED) while an earlier one is awaited, or
    // after an earlier one failed, is not an unhandled rejection (which would end the process).
    submitted.catch(() => undefined);
    pending.push(submitted);
    // One batch running and one queued behind it: the next is submitted when the first is done.
    if (pending.length >= 2) {
      done += await pending.shift()!;
      req.onProgress?.(done, total);
    }
  }
  while (pending.length) {
    done += await pending.shift()!;
    req.onProgress?.(done, total);
  }
  return {
    width,
    height,
    channel,
    channelMax: baseline.maxes[channel],
    baselineTotal: baseline.sums[channel],
    baselineProbabilities: baseline.probabilities,
    targetClass,
    activation,
    probability,
    topClass,
  };
}

/** What defaultOcclusionLayer needs of a layer. */
export interface LayerLike {
  kind: string;
  tensor: string;
  outputShape: number[];
}

/** Element-wise ops that keep a conv's feature maps: followed from the last conv to the map ZF plots. */
const FOLLOW = new Set(['Relu', 'Clip', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'BatchNormalization', 'Add']);

/**
 * The layer occlusion follows by default: the last convolution whose output has spatial extent
 * (H·W > 1), carried through the element-wise ops right after it (ReLU, BatchNormalization, a
 * residual Add…) while each is its only consumer and keeps its shape, so that on AlexNet-like
 * nets it is the rectified conv5 (ZF's "layer 5"). Falls back to the last layer with spatial
 * output; undefined when there is none.
 */
export function defaultOcclusionLayer<L extends LayerLike>(graph: OnnxGraph, layers: L[]): L | undefined {
  const spatial = (l: L) => l.outputShape.length === 3 && l.outputShape[1] * l.outputShape[2] > 1;
  const candidates = layers.filter(spatial);
  let layer = [...candidates].reverse().find((l) => l.kind === 'CONV') ?? candidates[candidates.length - 1];
  const byTensor = new Map(layers.map((l) => [l.tensor, l]));
  while (layer) {
    const next = graph.consumers.get(layer.tensor) ?? [];
    const follow = next.length === 1 && FOLLOW.has(next[0].op) ? byTensor.get(next[0].proto.output[0]) : undefined;
    if (!follow || follow.outputShape.join() !== layer.outputShape.join()) break;
    layer = follow;
  }
  return layer;
}
