/**
 * Projections through the engine: one compiled graph per (model, target, method, LRN mode),
 * and concurrent requests for it merged into batched runs in which each image's forward pass
 * is computed once, however many of its units are projected.
 */
import { compileProjection, ITEM_INPUTS } from '../compiler/projection';
import { seedShape } from '../compiler/units';
import { Unpool } from '../compiler/rules';
import type { Backend } from '../config';
import { OnnxGraph } from '../onnx/graph';
import type { LrnMode, Method, SeedMode } from '../vocabulary';
import { Engine, EngineModel, graphKey, PreparedImage, split, uniqueImages } from './engine';
import { OrtTensor } from './runtime';

export interface ProjectableModel extends EngineModel {
  graph: OnnxGraph;
  shapes: Map<string, number[]>;
  forwardPerItem: boolean;
}

/** One unit of one image to project: an item of a batched run. */
export interface ProjectionItem {
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
  /** The most items of its runs, if not MAX_BATCH (an atlas's larger runs: a batcher of their own). */
  batch?: number;
}

export interface ProjectionResult {
  /** [top, left, height, width]: the part of the input outside of which the projection is zero. */
  box: Extent;
  /** The projection inside `box`, [C, height, width]. */
  inside: Float32Array;
  /**
   * [C, H, W] with respect to the preprocessed input: a getter that makes the array on first
   * read (most results are cached, or read for their seed, and never need it whole). Don't
   * spread or serialise a result whole.
   */
  readonly projection: Float32Array;
  /** The chosen channel's activation map, [Ht·Wt]. */
  map: Float32Array;
  /** The seed's position in the map (MAX: the first maximum; FULL_MAP: the maximum). */
  position: { y: number; x: number };
  /** The activation there: the value sent down. */
  seedValue: number;
}

/** A box in an input image's pixels as [top, left, height, width] (the API's Box is {x y width height}). */
export type Extent = [top: number, left: number, height: number, width: number];

/**
 * A result whose whole projection, of an input of `shape` [C, H, W], is pasted from `inside`
 * when first read (unless given whole).
 */
export function boxedResult(
  inside: Float32Array,
  box: Extent,
  shape: number[],
  rest: Omit<ProjectionResult, 'box' | 'inside' | 'projection'>,
  whole?: Float32Array,
): ProjectionResult {
  let projection = whole;
  return {
    ...rest,
    box,
    inside,
    get projection() {
      return (projection ??= paste(inside, box, shape));
    },
  };
}

/**
 * Each item's region of `regions` [N, C, h, w] with its origin, as its box in an input of
 * `shape` [C, H, W] (the region cut to the input: parts off it hold zeros) and the values there.
 */
function boxedRegions(regions: OrtTensor, origins: BigInt64Array, [, H, W]: number[]): { box: Extent; inside: Float32Array; whole?: Float32Array }[] {
  const [N, C, h, w] = regions.dims;
  const data = regions.data as Float32Array;
  return Array.from({ length: N }, (_, n) => {
    const [oy, ox] = [Number(origins[2 * n]), Number(origins[2 * n + 1])];
    const [top, left] = [Math.max(0, oy), Math.max(0, ox)];
    const [height, width] = [Math.min(H, oy + h) - top, Math.min(W, ox + w) - left];
    const box: Extent = height > 0 && width > 0 ? [top, left, height, width] : [0, 0, 0, 0];
    const inside = cut(data.subarray(n * C * h * w, (n + 1) * C * h * w), [C, h, w], [top - oy, left - ox, box[2], box[3]]);
    return { box, inside };
  });
}

/** A new array [C, height, width] of `data` [C, H, W] inside `box`. */
export function cut(data: Float32Array, [C, H, W]: number[], [top, left, h, w]: Extent): Float32Array {
  const inside = new Float32Array(C * h * w);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < h; y++) inside.set(data.subarray((c * H + top + y) * W + left, (c * H + top + y) * W + left + w), (c * h + y) * w);
  }
  return inside;
}

/** cut()'s inverse: a new zero array of `shape` [C, H, W] with `inside` [C, height, width] at `box`. */
function paste(inside: Float32Array, [top, left, h, w]: Extent, [C, H, W]: number[]): Float32Array {
  const whole = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < h; y++) whole.set(inside.subarray((c * h + y) * w, (c * h + y + 1) * w), (c * H + top + y) * W + left);
  }
  return whole;
}

/** Whole projections [C, H, W], each as the box outside of which it is zero (a box of zero size when all of it is). */
function boxedMaps(projections: Float32Array[], shape: number[]): { box: Extent; inside: Float32Array; whole: Float32Array }[] {
  return projections.map((p) => {
    const box = nonZeroBox(p, shape);
    return { box, inside: cut(p, shape, box), whole: p };
  });
}

/** The smallest box outside of which every channel of `data` [C, H, W] is zero. */
function nonZeroBox(data: Float32Array, [C, H, W]: number[]): Extent {
  let top = H;
  let bottom = -1;
  let left = W;
  let right = -1;
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const row = data.subarray((c * H + y) * W, (c * H + y + 1) * W);
      let first = 0;
      while (first < W && row[first] === 0) first++;
      if (first === W) continue;
      let last = W - 1;
      while (row[last] === 0) last--;
      top = Math.min(top, y);
      bottom = Math.max(bottom, y);
      left = Math.min(left, first);
      right = Math.max(right, last);
    }
  }
  return bottom < 0 ? [0, 0, 0, 0] : [top, left, bottom - top + 1, right - left + 1];
}

/**
 * The unpooling a backend runs wholly on its device. ORT's WebGPU provider has no MaxPool
 * Indices output (and runs MaxUnpool on the CPU): there, switches are recomputed from the
 * forward values ('TAPS', which also means whole maps instead of regions). Elsewhere the
 * compiler's default.
 */
export function unpoolFor(backend: Backend): Unpool | undefined {
  return backend === 'webgpu' ? 'TAPS' : undefined;
}

export function project(engine: Engine, model: ProjectableModel, req: ProjectionItem): Promise<ProjectionResult> {
  // MAX and POSITION seeds share a graph that runs on regions; FULL_MAP needs whole maps.
  const regions = req.seed !== 'FULL_MAP' && req.regions !== false;
  const unpool = req.unpool ?? unpoolFor(engine.runtime.backend);
  const key = graphKey(model, `project/${req.method}/${req.lrn}/${req.target}/${unpool ?? ''}/${regions ? 'regions' : 'maps'}`);
  const compile = () =>
    compileProjection({
      graph: model.graph,
      shapes: model.shapes,
      target: req.target,
      method: req.method,
      lrn: req.lrn,
      unpool,
      regions,
      forwardPerItem: model.forwardPerItem,
    });
  const [Ct, Ht, Wt] = seedShape(model.shapes.get(req.target)!);
  const batcher = req.batch === undefined ? key : `${key}/batch ${req.batch}`;
  return engine
    .batcher<ProjectionItem, ProjectionResult>(
      batcher,
      model.maxBatch,
      async (items) => {
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
        const shape = model.shapes.get(model.inputName)!;
        const projections = originName
          ? boxedRegions(out[projectionName], out[originName].data as BigInt64Array, shape)
          : boxedMaps(split(out[projectionName], N), shape);
        const maps = split(out[mapName], N);
        const argmax = out[argmaxName].data as BigInt64Array;
        return items.map((item, n) => {
          const index = item.seed === 'POSITION' ? item.position!.y * Wt + item.position!.x : Number(argmax[n]);
          const { box, inside, whole } = projections[n];
          return boxedResult(inside, box, shape, { map: maps[n], position: { y: Math.floor(index / Wt), x: index % Wt }, seedValue: maps[n][index] }, whole);
        });
      },
      req.batch,
    )
    .submit(req);
}
