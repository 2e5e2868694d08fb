/**
 * Occlusion maps as pictures (ZF Fig. 7): a grid of occluder positions upsampled to the model's
 * input size (each pixel takes the value of the position whose square's centre is nearest) and
 * blended 50 % over the image as the model sees it. Continuous maps use a jet colour ramp, the
 * most-probable-class map a fixed palette (classColor).
 */
import type { Preprocessing } from '../model';
import type { FillMode } from '../vocabulary';
import { png, upscaleFor } from './render';

/**
 * The occluder's value per input channel, in preprocessed units: MEAN = 0 (the dataset mean after
 * mean subtraction), ZERO = a black pixel ((0 · scale − mean) / std), VALUE = `value` everywhere.
 */
export function occlusionFill(p: Preprocessing, mode: FillMode, value?: number): number[] {
  const C = p.channels === 'GRAY' ? 1 : 3;
  return Array.from({ length: C }, (_, c) => (mode === 'MEAN' ? 0 : mode === 'ZERO' ? (0 * p.scale - p.mean[c]) / p.std[c] : value!));
}

export interface GridPicture {
  values: Float32Array;
  width: number;
  height: number;
  size: number;
  stride: number;
}

const JET: [number, number, number, number][] = [
  [0, 0, 0, 0.5],
  [0.125, 0, 0, 1],
  [0.375, 0, 1, 1],
  [0.625, 1, 1, 0],
  [0.875, 1, 0, 0],
  [1, 0.5, 0, 0],
];

/** Jet colour of t in [0, 1], as 8-bit RGB. */
export function jet(t: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  let i = 1;
  while (i < JET.length - 1 && JET[i][0] < v) i++;
  const [t0, ...a] = JET[i - 1];
  const [t1, ...b] = JET[i];
  const f = (v - t0) / (t1 - t0);
  return [0, 1, 2].map((k) => Math.round(255 * (a[k] + f * (b[k] - a[k])))) as [number, number, number];
}

const PALETTE = [
  0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf, 0xaec7e8, 0xffbb78, 0x98df8a, 0xff9896, 0xc5b0d5,
  0xc49c94, 0xf7b6d2, 0xc7c7c7, 0xdbdb8d, 0x9edae5,
];

/** The colour of class k in the most-probable-class map, as #rrggbb (classes beyond 20 repeat). */
export function classColor(k: number): string {
  return '#' + PALETTE[k % PALETTE.length].toString(16).padStart(6, '0');
}

function rgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [n >> 16, (n >> 8) & 255, n & 255];
}

/** Grid index of each pixel along one axis: the position whose square's centre is nearest. */
function cellOf(length: number, cells: number, size: number, stride: number): Int32Array {
  const out = new Int32Array(length);
  for (let y = 0; y < length; y++) out[y] = Math.min(cells - 1, Math.max(0, Math.round((y + 0.5 - size / 2) / stride)));
  return out;
}

/**
 * PNG at the model's input size (upscaled to ≥ 224 px): the grid's colours blended half and half
 * with `pixels` (the model-size image, interleaved RGB or grey). `classes`: colours by class index
 * instead of a ramp over [min, max].
 */
export async function occlusionPng(pixels: Buffer, p: Preprocessing, grid: GridPicture, range: { min: number; max: number } | 'classes'): Promise<Buffer> {
  const { width: W, height: H } = p;
  const C = p.channels === 'GRAY' ? 1 : 3;
  const rows = cellOf(H, grid.height, grid.size, grid.stride);
  const cols = cellOf(W, grid.width, grid.size, grid.stride);
  const colours = Array.from(grid.values, (v) =>
    range === 'classes' ? rgb(classColor(v)) : jet(range.max > range.min ? (v - range.min) / (range.max - range.min) : 0.5),
  );
  const out = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const colour = colours[rows[y] * grid.width + cols[x]];
      const i = y * W + x;
      for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(0.5 * pixels[i * C + Math.min(c, C - 1)] + 0.5 * colour[c]);
    }
  }
  return png(out, W, H, 3, upscaleFor(Math.max(W, H), 224));
}
