/**
 * Geometric transforms of an image as the model sees it (8-bit pixels at its input size, [H, W,
 * C] interleaved), for the invariance study (ZF Fig. 5): each output pixel samples the input
 * bilinearly at the inverse-transformed position of its centre, about the image's centre; where
 * that falls outside the image, the value is `fill` (the sidecar's pad, the colour of the bars).
 */
import type { Transform } from '../vocabulary';

/** The values of the transformed image, as floats (bilinear samples lie between 8-bit levels). */
export function transformPixels(pixels: Uint8Array, [H, W, C]: number[], transform: Transform, amount: number, fill: number): Float32Array {
  const out = new Float32Array(H * W * C);
  const cy = H / 2;
  const cx = W / 2;
  const rad = (amount * Math.PI) / 180;
  const [cos, sin] = [Math.cos(rad), Math.sin(rad)];
  // Where in the input the centre (u, v) of an output pixel comes from.
  const source = (u: number, v: number): [number, number] => {
    if (transform === 'TRANSLATE') return [u, v - amount];
    if (transform === 'SCALE') return [cx + (u - cx) / amount, cy + (v - cy) / amount];
    // clockwise on screen (y down) by `amount`: the inverse turns back
    return [cx + cos * (u - cx) + sin * (v - cy), cy - sin * (u - cx) + cos * (v - cy)];
  };
  const at = (y: number, x: number, c: number) => (y < 0 || y >= H || x < 0 || x >= W ? fill : pixels[(y * W + x) * C + c]);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const [sx, sy] = source(x + 0.5, y + 0.5);
      // pixel centres are at integer + 0.5: the four around (sx, sy)
      const fx = sx - 0.5;
      const fy = sy - 0.5;
      const x0 = Math.floor(fx);
      const y0 = Math.floor(fy);
      const ax = fx - x0;
      const ay = fy - y0;
      for (let c = 0; c < C; c++) {
        const top = at(y0, x0, c) * (1 - ax) + (ax ? at(y0, x0 + 1, c) * ax : 0);
        const bottom = ay ? at(y0 + 1, x0, c) * (1 - ax) + (ax ? at(y0 + 1, x0 + 1, c) * ax : 0) : 0;
        out[(y * W + x) * C + c] = top * (1 - ay) + bottom * ay;
      }
    }
  }
  return out;
}
