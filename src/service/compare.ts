/**
 * Comparing two models (or two training snapshots of one) unit by unit: each unit of a layer of
 * one is matched to the unit of the same layer of the other whose activations correlate best
 * with it over a dataset.
 *
 * A unit's activation on an image is its feature map's mean over positions (spatially averaged;
 * for dense layers the unit's value), so each unit is a vector of one number per image; the
 * correlation is Pearson's r of two such vectors over the same images. The match of a unit is
 * the other model's unit of largest r (signed: an anti-correlated unit is no match; ties: the
 * lower channel); it is not one-to-one (two units may share a match). A unit constant over the
 * images (a dead ReLU) has no correlation and no match. The top-k sets are the k images with the
 * largest spatial maximum (one per image, ties to the earlier image), as the top-k index ranks
 * them, computed from the same sweep, so no index is needed.
 */
import { createHash } from 'node:crypto';
import { seedShape } from '../compiler/units';
import { Codec, decodeRecord, encodeRecord } from '../cache/entry';
import { resultKey } from '../cache/keys';
import { ApiError, badInput } from '../errors';
import type { Layer, Model, Unit } from '../model';
import type { Dataset } from '../registry/datasets';
import { datasetImage } from './images';
import { findLayer } from './lookup';
import type { Services } from './services';
import { channelMaxima, UnitActivation } from './top-units';

/** Per unit and image, over the first `images` images of a dataset: [C, N] each. */
interface Sweep {
  mean: Float32Array;
  max: Float32Array;
  /** The maximum's flat position in the map (first in raster order). */
  argmax: Float32Array;
}

/** A top image of a unit in a comparison: its index in the dataset, value and position. */
export interface SweptTop {
  image: number;
  value: number;
  y: number;
  x: number;
}

export interface UnitMatch {
  unit: Unit;
  /** Null for a unit constant over the images. */
  match: Unit | null;
  correlation: number | null;
  /** How many of the unit's top-k images are among its match's top-k. */
  overlap: number;
  top: SweptTop[];
  matchTop: SweptTop[];
}

export interface Comparison {
  model: Model;
  other: Model;
  layer: Layer;
  dataset: Dataset;
  images: number;
  k: number;
  matches: UnitMatch[];
}

export interface CompareRequest {
  /** The first images of the dataset in name order; default: all of them, up to MAX_COMPARE_IMAGES. */
  images?: number;
  /** Size of the top sets; default 9 (ZF Fig. 2). */
  k?: number;
}

export const COMPARE_DEFAULTS = { k: 9 } as const;

/** Images swept at once: enough to fill the micro-batcher, few enough to stay clear of MAX_QUEUED_ITEMS. */
const CHUNK = 32;

/** Both models' activations of one layer over a dataset, units matched by correlation; checked (BAD_USER_INPUT, INCOMPATIBLE_MODELS). */
export async function compareModels(
  services: Services,
  model: Model,
  other: Model,
  layerName: string,
  dataset: Dataset,
  request: CompareRequest,
): Promise<Comparison> {
  const { maxCompareImages, maxCompareUnits } = services.config;
  const layer = findLayer(model, layerName);
  const otherLayer = findLayer(other, layerName);
  if (layer.outputShape.join() !== otherLayer.outputShape.join()) {
    throw new ApiError(
      'INCOMPATIBLE_MODELS',
      `layer "${layerName}" outputs [${layer.outputShape}] in "${model.name}" but [${otherLayer.outputShape}] in "${other.name}": units can only be matched between layers of the same shape`,
      { layer: layerName, shapes: [layer.outputShape, otherLayer.outputShape] },
    );
  }
  const available = dataset.images.length;
  const images = request.images ?? Math.min(available, maxCompareImages);
  if (!Number.isInteger(images) || images < 2 || images > Math.min(available, maxCompareImages)) {
    throw badInput(
      `images must be between 2 and ${Math.min(available, maxCompareImages)} (dataset "${dataset.name}" has ${available}; MAX_COMPARE_IMAGES is ${maxCompareImages}), got ${images}`,
      {
        argument: 'images',
      },
    );
  }
  const k = request.k ?? COMPARE_DEFAULTS.k;
  if (!Number.isInteger(k) || k < 1 || k > Math.min(100, images))
    throw badInput(`k must be between 1 and ${Math.min(100, images)}, got ${k}`, { argument: 'k' });
  const [C] = seedShape(layer.outputShape);
  if (C > maxCompareUnits) {
    throw badInput(`layer "${layerName}" has ${C} units, over the limit of ${maxCompareUnits} (MAX_COMPARE_UNITS)`, {
      argument: 'layer',
      units: C,
      limit: maxCompareUnits,
    });
  }
  const [a, b] = await Promise.all([sweep(services, model, layer, dataset, images), sweep(services, other, otherLayer, dataset, images)]);
  const r = correlations(a.mean, b.mean, C, images);
  const W = seedShape(layer.outputShape)[2];
  const tops = (s: Sweep) => Array.from({ length: C }, (_, c) => topImages(s, c, images, k, W));
  const [topsA, topsB] = [tops(a), tops(b)];
  const matches = Array.from({ length: C }, (_, c): UnitMatch => {
    let best = -1;
    for (let d = 0; d < C; d++) if (!Number.isNaN(r[c * C + d]) && (best < 0 || r[c * C + d] > r[c * C + best])) best = d;
    const unit = { model, layer, index: c };
    if (best < 0) return { unit, match: null, correlation: null, overlap: 0, top: topsA[c], matchTop: [] };
    const mine = new Set(topsA[c].map((t) => t.image));
    return {
      unit,
      match: { model: other, layer: otherLayer, index: best },
      correlation: r[c * C + best],
      overlap: topsB[best].filter((t) => mine.has(t.image)).length,
      top: topsA[c],
      matchTop: topsB[best],
    };
  });
  return { model, other, layer, dataset, images, k, matches };
}

/** The mean of the matches' correlations (units with a match only), or null when none has one. */
export function meanCorrelation(c: Comparison): number | null {
  const rs = c.matches.flatMap((m) => (m.correlation === null ? [] : [m.correlation]));
  return rs.length ? rs.reduce((s, v) => s + v, 0) / rs.length : null;
}

/** The `first` (default: all) of a unit's top images of a comparison, as activations of that unit (their image read from the dataset). */
export function sweptActivations(services: Services, dataset: Dataset, unit: Unit, tops: SweptTop[], first = tops.length): UnitActivation[] {
  if (!Number.isInteger(first) || first < 0) throw badInput(`first must be 0 or more, got ${first}`, { argument: 'first' });
  return tops
    .slice(0, first)
    .map((t) => ({ unit, image: datasetImage(services, dataset.name, dataset.images[t.image].name), value: t.value, position: { y: t.y, x: t.x } }));
}

/**
 * Pearson's r of every unit of `a` with every unit of `b`, [C, C] row-major (NaN where either is
 * constant): each unit's vector centred and scaled to unit length, then r = the dot product.
 */
export function correlations(a: Float32Array, b: Float32Array, C: number, N: number): Float64Array {
  const za = standardise(a, C, N);
  const zb = standardise(b, C, N);
  const r = new Float64Array(C * C);
  for (let i = 0; i < C; i++) {
    for (let j = 0; j < C; j++) {
      let s = 0;
      for (let n = 0, x = i * N, y = j * N; n < N; n++, x++, y++) s += za[x] * zb[y];
      r[i * C + j] = s;
    }
  }
  return r;
}

/** Each row of [C, N], minus its mean, divided by its norm; a constant row is NaN. */
function standardise(v: Float32Array, C: number, N: number): Float64Array {
  const z = new Float64Array(C * N);
  for (let c = 0; c < C; c++) {
    let mean = 0;
    for (let n = 0; n < N; n++) mean += v[c * N + n];
    mean /= N;
    let norm = 0;
    for (let n = 0; n < N; n++) norm += (v[c * N + n] - mean) ** 2;
    norm = Math.sqrt(norm);
    for (let n = 0; n < N; n++) z[c * N + n] = norm > 0 ? (v[c * N + n] - mean) / norm : NaN;
  }
  return z;
}

/** Channel c's k images with the largest maximum (ties: the earlier image). */
function topImages(s: Sweep, c: number, N: number, k: number, W: number): SweptTop[] {
  const row = s.max.subarray(c * N, (c + 1) * N);
  const order = Array.from({ length: N }, (_, n) => n).sort((x, y) => row[y] - row[x] || x - y);
  return order.slice(0, k).map((n) => {
    const at = s.argmax[c * N + n];
    return { image: n, value: row[n], y: Math.floor(at / W), x: at % W };
  });
}

/** The sweep as cache bytes: the three [C, N] arrays. */
const SWEEP: Codec<Sweep> = {
  encode: ({ mean, max, argmax }) => encodeRecord({ meta: {}, tensors: [mean, max, argmax] }),
  decode: (bytes) => {
    const [mean, max, argmax] = decodeRecord(bytes).tensors;
    return { mean, max, argmax };
  },
};

/** The model's layer over the first `N` images of the dataset: per unit, its mean, maximum and the maximum's position; kept in the result cache. */
function sweep(services: Services, model: Model, layer: Layer, dataset: Dataset, N: number): Promise<Sweep> {
  const names = dataset.images.slice(0, N).map((i) => i.name);
  const imagesId = createHash('sha256')
    .update(JSON.stringify([dataset.fingerprint, names]))
    .digest('hex');
  const key = resultKey('layer-sweep', model, imagesId, { layer: layer.name });
  return services.cache.cached(key, SWEEP, async () => {
    const shape = seedShape(layer.outputShape);
    const [C, H, W] = shape;
    const out: Sweep = { mean: new Float32Array(C * N), max: new Float32Array(C * N), argmax: new Float32Array(C * N) };
    for (let from = 0; from < N; from += CHUNK) {
      await Promise.all(
        names.slice(from, from + CHUNK).map(async (name, i) => {
          const n = from + i;
          const prepared = await services.inference.prepare(model, datasetImage(services, dataset.name, name));
          const [values] = (await services.inference.forwardLayers(model, prepared, [layer])).activations;
          channelMaxima(values, shape).forEach(({ value, position }, c) => {
            let sum = 0;
            for (let j = c * H * W; j < (c + 1) * H * W; j++) sum += values[j];
            out.mean[c * N + n] = sum / (H * W);
            out.max[c * N + n] = value;
            out.argmax[c * N + n] = position.y * W + position.x;
          });
        }),
      );
    }
    return out;
  });
}
