/** Pictures of computed tensors: projections, activation maps, feature-map grids. */
import type { Preprocessing } from '../model';
import { grid, png, rangeToPixels, signedToPixels, upscaleFor, upscalePixels } from './render';

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * A projection as computed: [C, height, width] values `inside` its box [top, left, height, width]
 * of the input, zero outside it (engine/projections.ts ProjectionResult).
 */
export interface BoxedProjection {
  inside: Float32Array;
  box: readonly number[];
}

/**
 * A projection (w.r.t. the preprocessed input) as a picture: 0 at mid-grey, scaled by max |value|
 * (norm01c), channels shown in RGB order, optionally cropped to a box, and upscaled (nearest) to
 * at least `minSide` pixels.
 */
export async function projectionPng(data: BoxedProjection, p: Preprocessing, crop?: Box, minSide = 224): Promise<Buffer> {
  const { pixels, width, height, channels } = projectionPixels(data, p, crop);
  return png(pixels, width, height, channels, upscaleFor(Math.max(width, height), minSide));
}

/** projectionPng's picture as interleaved 8-bit pixels, read from the values inside the box (never the whole input's). */
export function projectionPixels(
  { inside, box: [top, left, h, w] }: BoxedProjection,
  p: Preprocessing,
  crop?: Box,
): { pixels: Buffer; width: number; height: number; channels: number } {
  const C = p.channels === 'GRAY' ? 1 : 3;
  const box = crop ?? { x: 0, y: 0, width: p.width, height: p.height };
  const out = new Float32Array(C * box.width * box.height); // zero outside the projection's box
  // The rows and columns of `box` that the projection's box covers.
  const [y0, y1] = [Math.max(box.y, top), Math.min(box.y + box.height, top + h)];
  const [x0, x1] = [Math.max(box.x, left), Math.min(box.x + box.width, left + w)];
  for (let c = 0; c < C; c++) {
    const source = p.channels === 'BGR' ? 2 - c : c;
    for (let y = y0; y < y1 && x0 < x1; y++) {
      const from = (source * h + y - top) * w - left;
      out.set(inside.subarray(from + x0, from + x1), (c * box.height + y - box.y) * box.width + x0 - box.x);
    }
  }
  const pixels = signedToPixels({ channels: C, height: box.height, width: box.width, data: out });
  return { pixels, width: box.width, height: box.height, channels: C };
}

function minMax(data: ArrayLike<number>, from = 0, to = data.length) {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = from; i < to; i++) {
    const v = data[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return { min, max, mean: sum / Math.max(1, to - from) };
}

export function channelStats(data: Float32Array, channels: number) {
  const plane = data.length / channels;
  return Array.from({ length: channels }, (_, c) => ({ index: c, ...minMax(data, c * plane, (c + 1) * plane) }));
}

/** One channel's map, grey, from its min (or 0 if that is lower) to its max. */
export async function mapPng(map: Float32Array, height: number, width: number): Promise<Buffer> {
  const { min, max } = minMax(map);
  const pixels = rangeToPixels({ channels: 1, height, width, data: map }, Math.min(0, min), max);
  return png(pixels, width, height, 1, upscaleFor(Math.max(width, height), 128));
}

/** Every channel's map in one grid, each scaled to its own range (black = min(0, min)). */
export async function featureGridPng(data: Float32Array, [C, H, W]: number[]): Promise<Buffer> {
  const plane = H * W;
  const factor = upscaleFor(Math.max(H, W), 32);
  const tiles = Array.from({ length: C }, (_, c) => {
    const map = data.subarray(c * plane, (c + 1) * plane);
    const { min, max } = minMax(map);
    return upscalePixels(rangeToPixels({ channels: 1, height: H, width: W, data: map }, Math.min(0, min), max), W, H, 1, factor);
  });
  const g = grid(tiles, W * factor, H * factor, 1, 2, 255);
  return png(g.pixels, g.width, g.height, 1);
}
