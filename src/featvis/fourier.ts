/**
 * Lucid's Fourier parameterisation of an image (`param.fft_image`): each channel is the inverse
 * 2-D DFT of a half spectrum (columns kx = 0 … ⌊w/2⌋, as a real FFT keeps them), each coefficient
 * scaled by 1/frequency (frequencies below 1/max(h, w) count as that), times √(h·w) so that the
 * map is about unitary, then divided by 4: natural images have about that 1/f spectrum, so
 * gradient steps move every frequency about as far. Columns that stand for themselves and their
 * mirror (0 < kx < w/2) count twice, so the image is the real inverse FFT of the spectrum, as
 * Lucid's irfft2d; its imaginary part is dropped. `adjoint` is the exact transpose of `image`.
 */
import { FftPlan, fftPlan } from './fft';

export class FourierImage {
  /** Columns of the half spectrum. */
  readonly halfWidth: number;
  /** Per coefficient [h, halfWidth]: the 1/frequency scale, the √(hw)/4 and the ×2 of mirrored columns, over h·w (the inverse DFT's 1/n). */
  private readonly weight: Float64Array;
  /** The half spectrum, [h, halfWidth], and a spare row. */
  private readonly re: Float64Array;
  private readonly im: Float64Array;
  /** Rows in pairs, two real rows as one complex sequence, transposed: [w, pairs] (each pair a column). */
  private readonly rowRe: Float64Array;
  private readonly rowIm: Float64Array;
  private readonly pairs: number;
  /** The columns that are their own mirror: 0, and w/2 for even w. */
  private readonly selfConjugate: number[];
  private readonly rows: FftPlan;
  private readonly cols: FftPlan;

  constructor(
    readonly height: number,
    readonly width: number,
    decayPower = 1,
  ) {
    const [h, w] = [height, width];
    this.halfWidth = Math.floor(w / 2) + 1;
    this.weight = new Float64Array(h * this.halfWidth);
    const n = h * w;
    for (let ky = 0; ky < h; ky++) {
      const fy = (ky <= (h - 1) / 2 ? ky : ky - h) / h; // numpy's fftfreq
      for (let kx = 0; kx < this.halfWidth; kx++) {
        const fx = kx / w;
        const frequency = Math.max(Math.sqrt(fx * fx + fy * fy), 1 / Math.max(h, w));
        const mirrored = kx > 0 && 2 * kx !== w ? 2 : 1;
        this.weight[ky * this.halfWidth + kx] = (mirrored * Math.sqrt(n)) / frequency ** decayPower / 4 / n;
      }
    }
    this.re = new Float64Array((h + 1) * this.halfWidth);
    this.im = new Float64Array((h + 1) * this.halfWidth);
    this.selfConjugate = w % 2 === 0 ? [0, w / 2] : [0];
    this.pairs = Math.ceil(h / 2);
    this.rowRe = new Float64Array(w * this.pairs);
    this.rowIm = new Float64Array(w * this.pairs);
    this.rows = fftPlan(w);
    this.cols = fftPlan(h);
  }

  /** Coefficients per channel: real parts then imaginary parts, each [h, halfWidth]. */
  get coefficients(): number {
    return 2 * this.height * this.halfWidth;
  }

  /**
   * The image [h, w] of one channel's coefficients (`spectrum` from `offset`), written to `out`
   * from `outOffset`. Inverse DFTs of the half spectrum's columns, then of the rows, two at a time (all
   * at once: the pairs are the columns of a transposed array):
   * a row's real inverse DFT is that of its Hermitian part H[k] = (r[k] + conj r[−k]) / 2, real, so
   * rows a and b go as one transform of H_a + i·H_b, whose real and imaginary parts are theirs.
   */
  image(spectrum: Float64Array, offset: number, out: Float64Array, outOffset: number): void {
    const { height: h, width: w, halfWidth: hw, weight, re, im, rowRe, rowIm, pairs: P } = this;
    const half = h * hw;
    for (let k = 0; k < half; k++) {
      re[k] = weight[k] * spectrum[offset + k];
      im[k] = weight[k] * spectrum[offset + half + k];
    }
    re.fill(0, half); // the spare row: the odd last row's partner (adjoint writes there)
    im.fill(0, half);
    this.cols.transform(re, im, true, hw);
    // H[k] = (r[k] + conj r[−k]) / 2 where r[k] is 0 for k ≥ hw (columns past the half spectrum): for
    // 0 < k < hw, r[k] / 2 alone, except at k = w/2 (even w) = −k; for k ≥ hw, conj r[w − k] / 2 alone.
    for (let pair = 0; pair < P; pair++) {
      const a = 2 * pair * hw;
      const b = a + hw;
      for (let k = 0; k < hw; k++) {
        rowRe[k * P + pair] = (re[a + k] - im[b + k]) / 2;
        rowIm[k * P + pair] = (im[a + k] + re[b + k]) / 2;
      }
      for (const k of this.selfConjugate) {
        rowRe[k * P + pair] = re[a + k];
        rowIm[k * P + pair] = re[b + k];
      }
      for (let k = hw; k < w; k++) {
        rowRe[k * P + pair] = (re[a + w - k] + im[b + w - k]) / 2;
        rowIm[k * P + pair] = (re[b + w - k] - im[a + w - k]) / 2;
      }
    }
    this.rows.transform(rowRe, rowIm, true, P);
    for (let pair = 0; pair < P; pair++) {
      const y = outOffset + 2 * pair * w;
      for (let x = 0; x < w; x++) out[y + x] = rowRe[x * P + pair];
      if (2 * pair + 1 < h) for (let x = 0; x < w; x++) out[y + w + x] = rowIm[x * P + pair];
    }
  }

  /**
   * The transpose of `image`: the gradient with respect to the coefficients of a gradient `g`
   * [h, w] to the image. Re(A·z) with A = conj(F)·weight (F the forward DFT, the 1/n in weight)
   * has the transpose z ↦ weight·F(g) for real g: forward DFTs of the rows, two real rows as one
   * complex transform (Z = F(g_a + i·g_b): F(g_a) = (Z[k] + conj Z[−k]) / 2, F(g_b) = (Z[k] − conj Z[−k]) / 2i),
   * then of the half spectrum's columns.
   */
  adjoint(g: Float64Array, gOffset: number, out: Float64Array, outOffset: number): void {
    const { height: h, width: w, halfWidth: hw, weight, re, im, rowRe, rowIm, pairs: P } = this;
    for (let pair = 0; pair < P; pair++) {
      const y = gOffset + 2 * pair * w;
      for (let x = 0; x < w; x++) rowRe[x * P + pair] = g[y + x];
      if (2 * pair + 1 < h) for (let x = 0; x < w; x++) rowIm[x * P + pair] = g[y + w + x];
      else for (let x = 0; x < w; x++) rowIm[x * P + pair] = 0;
    }
    this.rows.transform(rowRe, rowIm, false, P);
    // Z[k] and Z[−k] (the odd last row's partner goes to the spare row)
    for (let pair = 0; pair < P; pair++) {
      const a = 2 * pair * hw;
      const b = a + hw;
      re[a] = rowRe[pair];
      im[a] = 0;
      re[b] = rowIm[pair];
      im[b] = 0;
      for (let k = 1; k < hw; k++) {
        const zk = k * P + pair;
        const zm = (w - k) * P + pair;
        re[a + k] = (rowRe[zk] + rowRe[zm]) / 2;
        im[a + k] = (rowIm[zk] - rowIm[zm]) / 2;
        re[b + k] = (rowIm[zk] + rowIm[zm]) / 2;
        im[b + k] = -(rowRe[zk] - rowRe[zm]) / 2;
      }
    }
    this.cols.transform(re, im, false, hw);
    const half = h * hw;
    for (let k = 0; k < half; k++) {
      out[outOffset + k] = weight[k] * re[k];
      out[outOffset + half + k] = weight[k] * im[k];
    }
  }
}
