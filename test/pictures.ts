import type { Preprocessing } from '../src/model';

/** Test pictures made in code. */

/** A photo-like picture: smooth colour gradients, a few hard-edged shapes, mild noise. */
export function picture(width: number, height: number, seed = 1): Buffer {
  const raw = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) % 2147483648;
      const noise = (s / 2147483648 - 0.5) * 16;
      const inDisc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (width * 0.2) ** 2;
      const inBar = x > width * 0.1 && x < width * 0.25;
      for (let c = 0; c < 3; c++) {
        const base = 128 + 90 * Math.sin((x / width) * 3 + c) * Math.cos((y / height) * 2 - c);
        raw[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, base + noise + (inDisc ? 60 - 40 * c : 0) + (inBar ? -70 : 0)));
      }
    }
  }
  return raw;
}

/** Image limits for decoding tests: 20 MiB, 40 megapixels. */
export const IMAGE_LIMITS = { maxImageBytes: 20 << 20, maxImagePixels: 40e6 };

/** A 224×224 RGB input in [0, 1], stretched, colour profiles ignored: preprocessing with nothing of its own. */
export const PLAIN_RGB: Preprocessing = {
  width: 224,
  height: 224,
  channels: 'RGB',
  scale: 1 / 255,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  resize: 'stretch',
  colorProfile: 'ignore',
};
