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
  if (channels !== 3) {
    for (let i = 0; i < channels * n; i++) pixels[i] = sigmoid(t[i]);
    return;
  }
  const [[m00, m01, m02], [m10, m11, m12], [m20, m21, m22]] = COLOR_MIX;
  for (let i = 0; i < n; i++) {
    const t0 = t[i];
    const t1 = t[n + i];
    const t2 = t[2 * n + i];
    pixels[i] = sigmoid(m00 * t0 + m01 * t1 + m02 * t2);
    pixels[n + i] = sigmoid(m10 * t0 + m11 * t1 + m12 * t2);
    pixels[2 * n + i] = sigmoid(m20 * t0 + m21 * t1 + m22 * t2);
  }
}

/** toPixels' gradient: from the gradient `g` [C, n] to the pixels it made (`pixels`), the gradient to `t`, written to `out`. */
export function toPixelsAdjoint(g: Float64Array, pixels: Float64Array, channels: number, out: Float64Array): void {
  const n = g.length / channels;
  if (channels !== 3) {
    for (let i = 0; i < channels * n; i++) out[i] = g[i] * pixels[i] * (1 - pixels[i]);
    return;
  }
  const [[m00, m01, m02], [m10, m11, m12], [m20, m21, m22]] = COLOR_MIX;
  for (let i = 0; i < n; i++) {
    const d0 = g[i] * pixels[i] * (1 - pixels[i]);
    const d1 = g[n + i] * pixels[n + i] * (1 - pixels[n + i]);
    const d2 = g[2 * n + i] * pixels[2 * n + i] * (1 - pixels[2 * n + i]);
    out[i] = m00 * d0 + m10 * d1 + m20 * d2;
    out[n + i] = m01 * d0 + m11 * d1 + m21 * d2;
    out[2 * n + i] = m02 * d0 + m12 * d1 + m22 * d2;
  }
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}
