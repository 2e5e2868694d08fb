/**
 * Lucid's decorrelated colour space (`to_valid_rgb(…, decorrelate=True)`): the optimised channels
 * are mixed by the square root of ImageNet's colour correlation matrix (Lucid's
 * `color_correlation_svd_sqrt`, its columns scaled so that the largest has norm 1), then squashed
 * into [0, 1] by a sigmoid. Steps in the optimised space then move colours the way natural images
 * vary, rather than each of R, G, B on its own. Images of other than three channels (grey) are
 * squashed without mixing.
 */
const SVD_SQRT = [
  [0.26, 0.09, 0.02],
  [0.27, 0.0, -0.05],
  [0.27, -0.09, 0.03],
];
const MAX_NORM = Math.max(...[0, 1, 2].map((col) => Math.hypot(...SVD_SQRT.map((row) => row[col]))));

/** The mixing matrix, [output RGB][optimised channel]. */
export const COLOR_MIX: number[][] = SVD_SQRT.map((row) => row.map((v) => v / MAX_NORM));

/**
 * Pixels in [0, 1] from the optimised channels `t` [C, n] (C = 3: mixed, then sigmoid; else
 * sigmoid per channel), written to `pixels` [C, n].
 */
export function toPixels(t: Float64Array, channels: number, pixels: Float64Array): void {
  const n = t.length / channels;
  for (let i = 0; i < n; i++) {
    if (channels === 3) {
      for (let c = 0; c < 3; c++) {
        const m = COLOR_MIX[c];
        pixels[c * n + i] = sigmoid(m[0] * t[i] + m[1] * t[n + i] + m[2] * t[2 * n + i]);
      }
    } else {
      for (let c = 0; c < channels; c++) pixels[c * n + i] = sigmoid(t[c * n + i]);
    }
  }
}

/** toPixels' gradient: from the gradient `g` [C, n] to the pixels it made (`pixels`), the gradient to `t`, written to `out`. */
export function toPixelsAdjoint(g: Float64Array, pixels: Float64Array, channels: number, out: Float64Array): void {
  const n = g.length / channels;
  for (let i = 0; i < n; i++) {
    if (channels === 3) {
      const d0 = g[i] * pixels[i] * (1 - pixels[i]);
      const d1 = g[n + i] * pixels[n + i] * (1 - pixels[n + i]);
      const d2 = g[2 * n + i] * pixels[2 * n + i] * (1 - pixels[2 * n + i]);
      for (let c = 0; c < 3; c++) out[c * n + i] = COLOR_MIX[0][c] * d0 + COLOR_MIX[1][c] * d1 + COLOR_MIX[2][c] * d2;
    } else {
      for (let c = 0; c < channels; c++) out[c * n + i] = g[c * n + i] * pixels[c * n + i] * (1 - pixels[c * n + i]);
    }
  }
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}
