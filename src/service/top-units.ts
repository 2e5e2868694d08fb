/**
 * The reverse of top activations: which units of a layer fire most for one image. A unit here is
 * a filter (channel) and its strength on the image is its feature map's maximum over positions,
 * as in the top-k index (the spatial maximum, first in raster order), so a filter's value here
 * is what the index would rank this image by.
 */
import { seedShape } from '../compiler/units';
import { badInput } from '../errors';
import { SourceImage } from '../inference';
import type { Layer, Model, Unit } from '../model';
import type { Scope } from './scope';
import { Position } from './views';

/** A unit's strongest activation on an image: its value and where in the map. */
export interface UnitActivation {
  unit: Unit;
  image: SourceImage;
  value: number;
  position: Position;
}

/** Each channel's maximum over the positions of a [C, H, W] unit grid and the first position (raster order) that has it. */
export function channelMaxima(values: Float32Array, [C, H, W]: number[]): { value: number; position: Position }[] {
  const plane = H * W;
  return Array.from({ length: C }, (_, c) => {
    let best = c * plane;
    for (let i = best + 1; i < (c + 1) * plane; i++) if (values[i] > values[best]) best = i;
    const at = best - c * plane;
    return { value: values[best], position: { y: Math.floor(at / W), x: at % W } };
  });
}

/** The `first` units of `layer` with the largest maximum on `image`, strongest first (ties: lower channel first). */
export async function topUnits(scope: Scope, model: Model, layer: Layer, image: SourceImage, first: number): Promise<UnitActivation[]> {
  const limit = scope.services.config.maxPageSize;
  if (!Number.isInteger(first) || first < 1 || first > limit) throw badInput(`first must be between 1 and ${limit}, got ${first}`, { argument: 'first' });
  const values = await scope.activations.load({ model, layer, image });
  return channelMaxima(values, seedShape(layer.outputShape))
    .map((m, index) => ({ unit: { model, layer, index }, image, ...m }))
    .sort((a, b) => b.value - a.value || a.unit.index - b.unit.index)
    .slice(0, first);
}
