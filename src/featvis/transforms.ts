/**
 * Lucid's `transforms.standard_transforms`, each step a random: pad 12 px (grey), jitter 8 px,
 * scale by one of 0.90, 0.92 … 1.10, rotate by one of −10 … 10 degrees (0 more likely), jitter
 * 4 px. They are composed here into one affine map from the model input's pixels to the optimised
 * image's, sampled bilinearly once (grey, 0.5, outside the image): the same geometry as Lucid's
 * chain, with one resampling instead of two. The image of `size` pixels is stretched to the model
 * input; pixel amounts are Lucid's at its default 128-pixel renders, scaled with `size`.
 * `sample` and `sampleAdjoint` are a linear map and its exact transpose.
 */
import { Random } from './random';

const SCALES = Array.from({ length: 11 }, (_, i) => 1 + (i - 5) / 50);
const ANGLES = [...Array.from({ length: 21 }, (_, i) => i - 10), 0, 0, 0, 0, 0];
/** Lucid's jitters, in pixels of a 128-pixel image. */
const JITTER = [8, 4];
const REFERENCE_SIZE = 128;

/** What one step's transform is: the draws, kept for tests and for telling runs apart. */
export interface TransformDraw {
  /** Translations before and after scaling and rotation, [y, x] in optimised-image pixels. */
  shift1: [number, number];
  shift2: [number, number];
  scale: number;
  /** Degrees. */
  angle: number;
}

/** The identity: what the model sees of the image when nothing is random (the result's own activation). */
export const NO_TRANSFORM: TransformDraw = { shift1: [0, 0], shift2: [0, 0], scale: 1, angle: 0 };

/** One step's random draw, in the order Lucid applies them. */
export function drawTransform(random: Random, size: number): TransformDraw {
  const amount = size / REFERENCE_SIZE;
  const jitter = (pixels: number): [number, number] => [random.uniform(-0.5, 0.5) * pixels * amount, random.uniform(-0.5, 0.5) * pixels * amount];
  const shift1 = jitter(JITTER[0]);
  const scale = random.choice(SCALES);
  const angle = random.choice(ANGLES);
  const shift2 = jitter(JITTER[1]);
  return { shift1, shift2, scale, angle };
}

/** Bilinear sampling of a [size, size] image at the model input's [height, width] pixels: four taps per pixel. */
export class Resampling {
  /**
   * Per output pixel, 4 source indices and their weights; a tap outside the image has index 0 and
   * weight 0 (the loops then need no branch, 3× faster), its weight times the fill going to `filled`.
   */
  readonly taps: Int32Array;
  readonly weights: Float64Array;
  /** Per output pixel, the fill's part: fill × the weights of its taps outside the image. */
  readonly filled: Float64Array;

  constructor(
    readonly size: number,
    readonly height: number,
    readonly width: number,
    draw: TransformDraw,
    readonly fill = 0.5,
  ) {
    this.taps = new Int32Array(4 * height * width);
    this.weights = new Float64Array(4 * height * width);
    this.filled = new Float64Array(height * width);
    this.set(draw);
  }

  /** Made anew for another draw, in place (no allocation: one per step would keep the garbage collector busy). */
  set(draw: TransformDraw): void {
    const { size, height, width, taps, weights, filled, fill } = this;
    const theta = (draw.angle * Math.PI) / 180;
    const cos = Math.cos(theta);
    const sin = Math.sin(theta);
    const centre = (size - 1) / 2;
    const { scale, shift1, shift2 } = draw;
    for (let i = 0; i < height; i++) {
      // From the model input back to the optimised image: undo the fit, the second jitter, the rotation, the scale, the first jitter.
      const y4 = ((i - (height - 1) / 2) * size) / height + shift2[0];
      for (let j = 0; j < width; j++) {
        const x4 = ((j - (width - 1) / 2) * size) / width + shift2[1];
        const y = (cos * y4 - sin * x4) / scale + shift1[0] + centre;
        const x = (sin * y4 + cos * x4) / scale + shift1[1] + centre;
        const y0 = Math.floor(y);
        const x0 = Math.floor(x);
        const fy = y - y0;
        const fx = x - x0;
        const at = 4 * (i * width + j);
        const inY0 = y0 >= 0 && y0 < size;
        const inY1 = y0 + 1 >= 0 && y0 + 1 < size;
        const inX0 = x0 >= 0 && x0 < size;
        const inX1 = x0 + 1 >= 0 && x0 + 1 < size;
        const outside =
          tap(taps, weights, at, inY0 && inX0, y0 * size + x0, (1 - fy) * (1 - fx)) +
          tap(taps, weights, at + 1, inY0 && inX1, y0 * size + x0 + 1, (1 - fy) * fx) +
          tap(taps, weights, at + 2, inY1 && inX0, (y0 + 1) * size + x0, fy * (1 - fx)) +
          tap(taps, weights, at + 3, inY1 && inX1, (y0 + 1) * size + x0 + 1, fy * fx);
        filled[at / 4] = fill * outside;
      }
    }
  }

  /** `image` [C, size, size] sampled into `out` [C, height, width]. */
  sample(image: Float64Array, channels: number, out: Float64Array): void {
    const { taps, weights, filled } = this;
    const n = this.height * this.width;
    const m = this.size * this.size;
    for (let q = 0; q < n; q++) {
      const k = 4 * q;
      const t0 = taps[k];
      const t1 = taps[k + 1];
      const t2 = taps[k + 2];
      const t3 = taps[k + 3];
      const w0 = weights[k];
      const w1 = weights[k + 1];
      const w2 = weights[k + 2];
      const w3 = weights[k + 3];
      for (let c = 0, base = 0; c < channels; c++, base += m) {
        let v = filled[q];
        v += w0 * image[base + t0];
        v += w1 * image[base + t1];
        v += w2 * image[base + t2];
        v += w3 * image[base + t3];
        out[c * n + q] = v;
      }
    }
  }

  /** The transpose of `sample` (the fill is constant: it has no gradient): `g` [C, height, width] into `out` [C, size, size]. */
  sampleAdjoint(g: Float64Array, channels: number, out: Float64Array): void {
    const { taps, weights } = this;
    const n = this.height * this.width;
    const m = this.size * this.size;
    out.fill(0, 0, channels * m);
    for (let q = 0; q < n; q++) {
      const k = 4 * q;
      const t0 = taps[k];
      const t1 = taps[k + 1];
      const t2 = taps[k + 2];
      const t3 = taps[k + 3];
      const w0 = weights[k];
      const w1 = weights[k + 1];
      const w2 = weights[k + 2];
      const w3 = weights[k + 3];
      for (let c = 0, base = 0; c < channels; c++, base += m) {
        const v = g[c * n + q];
        out[base + t0] += w0 * v;
        out[base + t1] += w1 * v;
        out[base + t2] += w2 * v;
        out[base + t3] += w3 * v;
      }
    }
  }
}

/** Sets one tap (outside the image: index 0, weight 0); returns its weight if it is outside, else 0. */
function tap(taps: Int32Array, weights: Float64Array, at: number, inside: boolean, index: number, weight: number): number {
  taps[at] = inside ? index : 0;
  weights[at] = inside ? weight : 0;
  return inside ? 0 : weight;
}
