/**
 * What resolvers ask of the models: prepared input tensors (memoised per model and image),
 * activations and projections, each through the engine's batchers. Errors from the compiler
 * and the runtime become API errors here.
 */
import { compileForward } from './compiler/forward';
import { seedTensor } from './compiler/projection';
import { UnsupportedOpError } from './compiler/rules';
import { LruBytes } from './cache/blobs';
import { Config } from './config';
import { Engine, PreparedImage } from './engine/engine';
import { project, ProjectionRequest, ProjectionResult } from './engine/projections';
import { ApiError, unsupported } from './errors';
import { preprocess } from './images/preprocess';
import { Layer, Model } from './registry/models';

/** An image the API was given: its bytes and their hash. */
export interface SourceImage {
  sha256: string;
  bytes: Buffer;
}

export type ProjectionOptions = Omit<ProjectionRequest, 'image' | 'target'>;

export class Inference {
  private readonly prepared: LruBytes<Float32Array>;
  private readonly preparing = new Map<string, Promise<Float32Array>>();

  constructor(
    readonly engine: Engine,
    private readonly config: Config,
  ) {
    this.prepared = new LruBytes(config.blobMemoryBytes / 4);
  }

  async prepare(model: Model, image: SourceImage): Promise<PreparedImage> {
    const key = `${model.sha256}/${image.sha256}`;
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
    return { key: image.sha256, data };
  }

  /** A layer's whole activation [C, H, W] (or [F]) for one image. */
  async activation(model: Model, layer: Layer, image: SourceImage): Promise<Float32Array> {
    const prepared = await this.prepare(model, image);
    const [out] = await guard(() => this.engine.forward(model, [layer.tensor], () => compileForward(model.graph, [layer.tensor]), prepared));
    return out;
  }

  async projection(model: Model, layer: Layer, image: SourceImage, options: ProjectionOptions): Promise<ProjectionResult> {
    const prepared = await this.prepare(model, image);
    return guard(() => project(this.engine, model, { ...options, target: seedTensor(model.graph, layer.node), image: prepared }));
  }
}

async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof ApiError) throw e;
    if (e instanceof UnsupportedOpError) throw unsupported(e.message, { node: e.node.name, op: e.node.op });
    throw new ApiError('INFERENCE_FAILED', `the runtime failed: ${(e as Error).message}`);
  }
}
