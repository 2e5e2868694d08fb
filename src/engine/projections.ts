/**
 * Projections through the engine: one compiled graph per (model, target, method, LRN mode),
 * and concurrent requests for it merged into batched runs in which each image's forward pass
 * is computed once, however many of its units are projected.
 */
import { compileProjection, ITEM_INPUTS, pasteRegion, seedShape } from '../compiler/projection';
import { LrnMode, Method, Unpool } from '../compiler/rules';
import { OnnxGraph } from '../onnx/graph';
import { Engine, EngineModel, PreparedImage, split, uniqueImages } from './engine';
import { OrtTensor } from './runtime';

export type SeedMode = 'MAX' | 'POSITION' | 'FULL_MAP';

export interface ProjectableModel extends EngineModel {
  graph: OnnxGraph;
  shapes: Map<string, number[]>;
}

export interface ProjectionRequest {
  /** The target activation tensor. */
  target: string;
  method: Method;
  lrn: LrnMode;
  image: PreparedImage;
  channel: number;
  seed: SeedMode;
  /** For seed POSITION. */
  position?: { y: number; x: number };
  /** The compiler's choice unless given (see ProjectionGraphSpec). */
  unpool?: Unpool;
  /** false: whole maps even for a one-position seed (the regions' reference, in tests). */
  regions?: boolean;
}

export interface ProjectionResult {
  /**
   * [C, H, W] with respect to the preprocessed input. From the cache it is a getter that makes
   * the array on first read (inference.ts): don't spread or serialise a result whole.
   */
  readonly projection: Float32Array;
  /** The chosen channel's activation map, [Ht·Wt]. */
  map: Float32Array;
  /** The seed's position in the map (MAX: the first maximum; FULL_MAP: the maximum). */
  position: { y: number; x: number };
  /** The activation there: the value sent down. */
  seedValue: number;
}

/** Each item's region [C, h, w] of `regions` [N, C, h, w] placed in its image of `shape` at its origin. */
function pasted(regions: OrtTensor, origins: BigInt64Array, shape: number[]): Float32Array[] {
  const [N, C, h, w] = regions.dims;
  const data = regions.data as Float32Array;
  const size = C * h * w;
  return Array.from({ length: N }, (_, n) => pasteRegion(data.subarray(n * size, (n + 1) * size), [h, w], [Number(origins[2 * n]), Number(origins[2 * n + 1])], shape));
}

export function project(engine: Engine, model: ProjectableModel, req: ProjectionRequest): Promise<ProjectionResult> {
  // MAX and POSITION seeds share a graph that runs on regions; FULL_MAP needs whole maps.
  const regions = req.seed !== 'FULL_MAP' && req.regions !== false;
  const key = `${model.sha256}/project/${req.method}/${req.lrn}/${req.target}/${req.unpool ?? ''}/${regions ? 'regions' : 'maps'}`;
  const compile = () => compileProjection({ graph: model.graph, shapes: model.shapes, target: req.target, method: req.method, lrn: req.lrn, unpool: req.unpool, regions });
  const [Ct, Ht, Wt] = seedShape(model.shapes.get(req.target)!);
  return engine
    .batcher<ProjectionRequest, ProjectionResult>(key, model.maxBatch, async (items) => {
      const loaded = await engine.load(key, compile);
      const { Tensor } = engine.runtime;
      const { images, itemImage } = uniqueImages(items.map((item) => item.image));
      const channels = new Float32Array(items.length * Ct);
      const masks = new Float32Array(items.length * Ht * Wt);
      const useMax = new Float32Array(items.length);
      items.forEach((item, n) => {
        channels[n * Ct + item.channel] = 1;
        if (item.seed === 'MAX') useMax[n] = 1;
        else if (item.seed === 'FULL_MAP') masks.fill(1, n * Ht * Wt, (n + 1) * Ht * Wt);
        else masks[n * Ht * Wt + item.position!.y * Wt + item.position!.x] = 1;
      });
      const N = items.length;
      const out = await engine.run(
        loaded,
        {
          [model.inputName]: engine.stack(model, images),
          [ITEM_INPUTS.image]: new Tensor('int64', BigInt64Array.from(itemImage, BigInt), [N]),
          [ITEM_INPUTS.channel]: new Tensor('float32', channels, [N, Ct]),
          [ITEM_INPUTS.mask]: new Tensor('float32', masks, [N, 1, Ht, Wt]),
          [ITEM_INPUTS.useMax]: new Tensor('float32', useMax, [N, 1, 1, 1]),
        },
        N,
      );
      const [projectionName, mapName, argmaxName, originName] = loaded.outputs;
      const projections = originName ? pasted(out[projectionName], out[originName].data as BigInt64Array, model.shapes.get(model.inputName)!) : split(out[projectionName], N);
      const maps = split(out[mapName], N);
      const argmax = out[argmaxName].data as BigInt64Array;
      return items.map((item, n) => {
        const index = item.seed === 'POSITION' ? item.position!.y * Wt + item.position!.x : Number(argmax[n]);
        return {
          projection: projections[n],
          map: maps[n],
          position: { y: Math.floor(index / Wt), x: index % Wt },
          seedValue: maps[n][index],
        };
      });
    })
    .submit(req);
}
