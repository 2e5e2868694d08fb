/**
 * What the service layer (src/service/) asks of the models: prepared input tensors (memoised per
 * model and image), activations, projections, predictions and occlusion maps, each through the
 * engine's batchers and kept in the result cache. Errors of the runtime become API errors here.
 */
import { compileForward } from './compiler/forward';
import { unitGridValues } from './compiler/units';
import { seedTensor } from './compiler/projection';
import { LruBytes } from './cache/blobs';
import { Codec, decodeRecord, encodeRecord, FLOATS } from './cache/entry';
import { modelCacheId, resultKey } from './cache/keys';
import { TieredStore } from './cache/store';
import { Config } from './config';
import { Engine, PixelImage, PreparedImage } from './engine/engine';
import { occlude, OcclusionResult } from './engine/occlusion';
import { Extent, boxedResult, project, ProjectionItem, ProjectionResult } from './engine/projections';
import { probabilityRule } from './compiler/occlusion';
import { ApiError, toApiError } from './errors';
import { DecodePool } from './images/decode-pool';
import { modelPixels, preprocess } from './images/preprocess';
import type { Layer, Model } from './model';

/** An image the API was given: its bytes and their hash. */
export interface SourceImage {
  sha256: string;
  bytes: Buffer;
  /** For images of a dataset: where it comes from. */
  dataset?: string;
  name?: string;
}

export type ProjectionOptions = Omit<ProjectionItem, 'image' | 'target'>;

export interface OcclusionOptions {
  size: number;
  stride: number;
  /** Preprocessed fill value per input channel. */
  fill: number[];
  targetClass?: number;
}

/**
 * Names an image's input tensor: the model's preprocessing too, not only the bytes (models that
 * share an .onnx, and so the engine's batches, may crop or colour the same image differently).
 */
function preparedKey(model: Model, image: SourceImage): string {
  return `${modelCacheId(model)}/${image.sha256}`;
}

export class Inference {
  private readonly prepared: LruBytes<Float32Array>;
  private readonly preparing = new Map<string, Promise<Float32Array>>();

  constructor(
    readonly engine: Engine,
    private readonly config: Config,
    /** Where results are kept across requests, restarts and processes (none: computed every time). */
    private readonly cache?: TieredStore,
    /** Where pixels() decodes (DECODE_THREADS; none: on this thread). */
    readonly decodePool?: DecodePool,
  ) {
    this.prepared = new LruBytes(config.preparedMemoryBytes);
  }

  async prepare(model: Model, image: SourceImage): Promise<PreparedImage> {
    this.engine.admit(); // backpressure: refuse (OVERLOADED) before decoding when the queue is full
    const key = preparedKey(model, image);
    let data = this.prepared.get(key);
    if (!data) {
      let pending = this.preparing.get(key);
      if (!pending) {
        pending = preprocess(image.bytes, model.preprocessing, this.config);
        this.preparing.set(key, pending);
        pending.finally(() => this.preparing.delete(key)).catch(() => undefined);
      }
      data = await pending;
      this.prepared.set(key, data);
    }
    return { key, data };
  }

  /**
   * An image as 8-bit pixels at the model's input size, for graphs that normalise them
   * themselves (index jobs). Not memoised: a job reads each image once. With a decoding pool
   * the image's bytes are moved to its worker: the caller must not use them afterwards.
   */
  async pixels(model: Model, image: SourceImage): Promise<PixelImage> {
    this.engine.admit();
    const key = preparedKey(model, image);
    const pixels = this.decodePool
      ? await this.decodePool.modelPixels(image.bytes, model.preprocessing)
      : await modelPixels(image.bytes, model.preprocessing, this.config);
    return { key, pixels };
  }

  /** A layer's whole activation as its unit grid (units.ts: [C, H, W], [F], or [D, T] for tokens) for one image. */
  async activation(model: Model, layer: Layer, image: SourceImage): Promise<Float32Array> {
    return this.cached(resultKey('activation', model, image.sha256, { layer: layer.name }), FLOATS, async () => {
      const prepared = await this.prepare(model, image);
      const [out] = await guard(() => this.engine.forward(model, `forward/${layer.tensor}`, () => compileForward(model.graph, [layer.tensor]), prepared));
      return unitGridValues(out, layer.outputShape);
    });
  }

  async projection(model: Model, layer: Layer, image: SourceImage, options: ProjectionOptions): Promise<ProjectionResult> {
    const { method, lrn, channel, seed, position } = options;
    const key = resultKey('projection', model, image.sha256, {
      layer: layer.name,
      channel,
      method,
      lrn,
      seed,
      position: position ? [position.y, position.x] : null,
    });
    return this.cached(key, projectionCodec(model.shapes.get(model.inputName)!), async () => {
      const prepared = await this.prepare(model, image);
      return guard(() => project(this.engine, model, { ...options, target: seedTensor(model.graph, layer.node), image: prepared }));
    });
  }

  /** A result from the cache, else computed once (single flight) and kept. Cached tensors are shared: read-only. */
  private cached<T>(key: string, codec: Codec<T>, compute: () => Promise<T>): Promise<T> {
    return this.cache ? this.cache.cached(key, codec, compute) : compute();
  }

  /** Class probabilities of one image: softmax of the first output (or the output, if it is a Softmax). */
  async predict(model: Model, image: SourceImage): Promise<Float32Array> {
    return this.cached(resultKey('predict', model, image.sha256, {}), FLOATS, async () => this.probabilities(model, await this.prepare(model, image)));
  }

  async probabilities(model: Model, prepared: PreparedImage): Promise<Float32Array> {
    const output = model.graph.outputNames[0];
    const [out] = await guard(() => this.engine.forward(model, `forward/${output}`, () => compileForward(model.graph, [output]), prepared));
    return toProbabilities(model, out);
  }

  /**
   * Uncached: `layers`' activations (unit grids, as activation()) for an input tensor made by
   * the caller (a transformed image, or one image of a sweep over a dataset, whose results are
   * kept as a whole), and with `probabilities` the class probabilities too, in one run.
   */
  async forwardLayers(
    model: Model,
    prepared: PreparedImage,
    layers: Layer[],
    probabilities = false,
  ): Promise<{ activations: Float32Array[]; probabilities?: Float32Array }> {
    const tensors = layers.map((l) => l.tensor);
    if (probabilities) tensors.push(model.graph.outputNames[0]);
    const out = await guard(() => this.engine.forward(model, `forward/${tensors.join('|')}`, () => compileForward(model.graph, tensors), prepared));
    return {
      activations: layers.map((l, i) => unitGridValues(out[i], l.outputShape)),
      probabilities: probabilities ? toProbabilities(model, out[layers.length]) : undefined,
    };
  }

  /** Number of classes: the size of the first output. */
  classCount(model: Model): number {
    return (model.shapes.get(model.graph.outputNames[0]) ?? [0]).reduce((a, b) => a * b, 1);
  }

  /** Occlusion sensitivity maps (ZF §4.2; engine/occlusion.ts) with parameters checked by service/occlusion.ts, cached per parameters. */
  async occlusion(model: Model, layer: Layer, image: SourceImage, o: OcclusionOptions): Promise<OcclusionResult> {
    const key = resultKey('occlusion', model, image.sha256, { layer: layer.name, size: o.size, stride: o.stride, fill: o.fill, target: o.targetClass ?? null });
    return this.cached(key, OCCLUSION, async () => {
      const prepared = await this.prepare(model, image);
      const batch = Math.min(model.maxBatch, this.config.maxBatch);
      return guard(() => occlude(this.engine, model, { layerTensor: layer.tensor, layerShape: layer.outputShape, image: prepared, ...o, batch }));
    });
  }
}

/**
 * A projection as cache bytes: in JSON the position and the box outside of which the
 * projection is zero; as float32 the projection inside that box, the map and the seed value.
 * The box is the seed's receptive field cut to the image (a relu1 unit of AlexNet reaches 19×19
 * of 224×224 pixels), or for whole-map projections (FULL_MAP) the part that is non-zero, so
 * most entries are a fraction of the whole.
 */
interface ProjectionMeta {
  position: { y: number; x: number };
  box: Extent;
}

/** The codec of projections of an input of `shape` [C, H, W]. */
export const projectionCodec = (shape: number[]): Codec<ProjectionResult> => ({
  encode: (r) => encodeRecord<ProjectionMeta>({ meta: { position: r.position, box: r.box }, tensors: [r.inside, r.map, Float32Array.of(r.seedValue)] }),
  decode: (bytes) => {
    const { meta, tensors } = decodeRecord<ProjectionMeta>(bytes);
    return boxedResult(tensors[0], meta.box, shape, { map: tensors[1], seedValue: tensors[2][0], position: meta.position });
  },
});

/** An occlusion result as cache bytes: scalars in JSON; probabilities and the three grids as float32. */
type OcclusionMeta = Pick<OcclusionResult, 'width' | 'height' | 'channel' | 'channelMax' | 'baselineTotal' | 'targetClass'>;
const OCCLUSION: Codec<OcclusionResult> = {
  encode: ({ baselineProbabilities, activation, probability, topClass, ...meta }) =>
    encodeRecord<OcclusionMeta>({ meta, tensors: [baselineProbabilities, activation, probability, topClass] }),
  decode: (bytes) => {
    const { meta, tensors } = decodeRecord<OcclusionMeta>(bytes);
    const [baselineProbabilities, activation, probability, topClass] = tensors;
    return { ...meta, baselineProbabilities, activation, probability, topClass };
  },
};

/** Class probabilities from the first output: softmax of the logits, exp of log-probabilities, or the output of a final Softmax. */
function toProbabilities(model: Model, out: Float32Array): Float32Array {
  const rule = probabilityRule(model.graph);
  if (rule === 'IS_SOFTMAX') return out;
  if (rule === 'EXP') return out.map(Math.exp);
  let max = -Infinity;
  for (const v of out) max = Math.max(max, v);
  let sum = 0;
  for (const v of out) sum += Math.exp(v - max);
  return out.map((v) => Math.exp(v - max) / sum);
}

async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw toApiError(e) ?? new ApiError('INFERENCE_FAILED', `the runtime failed: ${(e as Error).message}`);
  }
}
