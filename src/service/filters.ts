/** A layer's filters apart from projections: their weights, and their activations on an image. */
import { seedShape } from '../compiler/units';
import { channelStats } from '../images/maps';
import { SourceImage } from '../inference';
import type { Layer, Model, Unit } from '../model';
import { layerWeights } from '../registry/weights';
import type { Scope } from './scope';
import type { Services } from './services';
import { activationMapUrl, featureMapsUrls, kernelGridUrl, kernelImageUrl, Position } from './views';

export interface FilterWeights {
  /** [C/groups, kh, kw] for convs, [inputs] for dense units. */
  shape: number[];
  min: number;
  max: number;
  mean: number;
  /** Euclidean norm. */
  l2: number;
  /** PNG of the kernel, for convs that read the image; else null. */
  imageUrl: string | null;
}

/** A filter's weights, or null for layers without weights (ReLU, pooling, …). */
export async function filterWeights(services: Services, unit: Unit): Promise<FilterWeights | null> {
  const weights = layerWeights(unit.model, unit.layer);
  if (!weights) return null;
  const w = weights.filter(unit.index);
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let squares = 0;
  for (const v of w) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    squares += v * v;
  }
  return { shape: weights.filterShape, min, max, mean: sum / w.length, l2: Math.sqrt(squares), imageUrl: await kernelImageUrl(services, unit, weights) };
}

/** All of a layer's kernels in one PNG (ZF Fig. 6), for convs that read the image; else null. */
export async function filterGridUrl(services: Services, model: Model, layer: Layer): Promise<string | null> {
  const weights = layerWeights(model, layer);
  return weights && kernelGridUrl(services, model, layer, weights);
}

export interface FilterActivation {
  min: number;
  max: number;
  mean: number;
  /** The maximum's position, first in raster order. */
  position: Position;
  mapUrl: string;
}

/** One filter's feature map for an image. */
export async function filterActivation(scope: Scope, unit: Unit, image: SourceImage): Promise<FilterActivation> {
  const { model, layer, index } = unit;
  const all = await scope.activations.load({ model, layer, image });
  const [, H, W] = seedShape(layer.outputShape);
  const map = all.subarray(index * H * W, (index + 1) * H * W);
  const [stats] = channelStats(map, 1);
  let best = 0;
  for (let i = 1; i < map.length; i++) if (map[i] > map[best]) best = i;
  const mapUrl = await activationMapUrl(scope.services, unit, image, map, [H, W]);
  return { min: stats.min, max: stats.max, mean: stats.mean, position: { y: Math.floor(best / W), x: best % W }, mapUrl };
}

/** All of a layer's feature maps for an image: per-channel statistics, a PNG grid and the tensor. */
export async function featureMaps(scope: Scope, model: Model, layer: Layer, image: SourceImage) {
  const data = await scope.activations.load({ model, layer, image });
  const { gridUrl, tensorUrl } = await featureMapsUrls(scope.services, model, layer, image, data);
  return { shape: layer.outputShape, channels: channelStats(data, seedShape(layer.outputShape)[0]), gridUrl, tensorUrl };
}
