/** Turns float arrays into pictures: signed maps with 0 at mid-grey, grids of tiles. */
import { encodePng } from './png';

/**
 * Interleaved pixels with `from` channels as `to` channels: grey replicated, or the first
 * channels kept (sharp keeps a grey image grey even when asked for sRGB).
 */
export function withChannels(data: Buffer, from: number, to: number): Buffer {
  if (from === to) return data;
  const count = data.length / from;
  const out = Buffer.alloc(count * to);
  for (let i = 0; i < count; i++) for (let c = 0; c < to; c++) out[i * to + c] = data[i * from + Math.min(c, from - 1)];
  return out;
}

/** A float image, channels-first: [channels (1 or 3), height, width]. */
export interface FloatImage {
  channels: number;
  height: number;
  width: number;
  data: Float32Array;
}

export function maxAbs(data: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (a > m) m = a;
  }
  return m;
}

/**
 * Interleaved 8-bit pixels, 0 → 128 and ±scale → 0/255 (the Deep Visualization Toolbox's
 * norm01c): the picture of a signed quantity such as a filter or a projection.
 */
export function signedToPixels(img: FloatImage, scale = maxAbs(img.data)): Buffer {
  const { channels, height, width, data } = img;
  const plane = height * width;
  const out = Buffer.alloc(plane * channels);
  const k = scale > 0 ? 127.5 / scale : 0;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) {
      out[i * channels + c] = clamp255(127.5 + data[c * plane + i] * k);
    }
  }
  return out;
}

/** Interleaved 8-bit pixels with [min, max] → [0, 255]: feature maps, heat maps. */
export function rangeToPixels(img: FloatImage, min: number, max: number): Buffer {
  const { channels, height, width, data } = img;
  const plane = height * width;
  const out = Buffer.alloc(plane * channels);
  const k = max > min ? 255 / (max - min) : 0;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) out[i * channels + c] = clamp255((data[c * plane + i] - min) * k);
  }
  return out;
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** A PNG of interleaved pixels, upscaled by an integer factor with nearest-neighbour. */
export function png(pixels: Buffer, width: number, height: number, channels: number, upscale = 1): Promise<Buffer> {
  return encodePng(upscalePixels(pixels, width, height, channels, upscale), width * upscale, height * upscale, channels);
}

/** Upscale factor that makes a small tile at least `target` pixels wide. */
export function upscaleFor(size: number, target = 64): number {
  return Math.max(1, Math.ceil(target / Math.max(1, size)));
}

/**
 * Lays out equal tiles (interleaved pixels) in a grid with `gap` pixels of `background`
 * between them; `columns` defaults to a near-square layout.
 */
export function grid(tiles: Buffer[], tileW: number, tileH: number, channels: number, gap = 1, background = 255, columns?: number) {
  const cols = columns ?? Math.ceil(Math.sqrt(tiles.length));
  const rows = Math.ceil(tiles.length / cols);
  const width = cols * tileW + (cols - 1) * gap;
  const height = rows * tileH + (rows - 1) * gap;
  const out = Buffer.alloc(width * height * channels, background);
  tiles.forEach((tile, t) => {
    const x0 = (t % cols) * (tileW + gap);
    const y0 = Math.floor(t / cols) * (tileH + gap);
    for (let y = 0; y < tileH; y++) {
      tile.copy(out, ((y0 + y) * width + x0) * channels, y * tileW * channels, (y + 1) * tileW * channels);
    }
  });
  return { pixels: out, width, height };
}

/** Nearest-neighbour upscaling of interleaved pixels (before gridding, so gaps stay 1 px). */
export function upscalePixels(pixels: Buffer, width: number, height: number, channels: number, factor: number): Buffer {
  if (factor === 1) return pixels;
  const rowIn = width * channels;
  const rowOut = rowIn * factor;
  const out = Buffer.alloc(rowOut * height * factor);
  for (let y = 0; y < height; y++) {
    // One row widened, then copied to the factor − 1 rows below it.
    const first = y * factor * rowOut;
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const v = pixels[y * rowIn + x * channels + c];
        for (let k = 0; k < factor; k++) out[first + (x * factor + k) * channels + c] = v;
      }
    }
    for (let k = 1; k < factor; k++) out.copyWithin(first + k * rowOut, first, first + rowOut);
  }
  return out;
}
