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
  private readonly re: Float64Array;
  private readonly im: Float64Array;
  /** One row's worth, for two rows transformed at once. */
  private readonly rowRe: Float64Array;
  private readonly rowIm: Float64Array;
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
    this.re = new Float64Array(n);
    this.im = new Float64Array(n);
    this.rowRe = new Float64Array(w);
    this.rowIm = new Float64Array(w);
    this.rows = fftPlan(w);
    this.cols = fftPlan(h);
  }

  /** Coefficients per channel: real parts then imaginary parts, each [h, halfWidth]. */
  get coefficients(): number {
    return 2 * this.height * this.halfWidth;
  }

  /**
   * The image [h, w] of one channel's coefficients (`spectrum` from `offset`), written to `out`
   * from `outOffset`. Inverse DFTs of the half spectrum's columns, then of the rows, two at a time:
   * a row's real inverse DFT is that of its Hermitian part H[k] = (r[k] + conj r[−k]) / 2, real, so
   * rows a and b go as one transform of H_a + i·H_b, whose real and imaginary parts are theirs.
   */
  image(spectrum: Float64Array, offset: number, out: Float64Array, outOffset: number): void {
    const { height: h, width: w, halfWidth: hw, weight, re, im, rowRe, rowIm } = this;
    const half = h * hw;
    for (let ky = 0; ky < h; ky++) {
      for (let kx = 0; kx < hw; kx++) {
        const k = ky * hw + kx;
        re[ky * w + kx] = weight[k] * spectrum[offset + k];
        im[ky * w + kx] = weight[k] * spectrum[offset + half + k];
      }
    }
    for (let kx = 0; kx < hw; kx++) this.cols.transform(re, im, true, kx, w);
    // r[k] for k ≥ hw is 0 (columns past the half spectrum).
    const at = (y: number, k: number, imag: boolean) => (k < hw ? (imag ? im : re)[y * w + k] : 0);
    for (let y = 0; y < h; y += 2) {
      const b = y + 1 < h ? y + 1 : -1;
      for (let k = 0; k < w; k++) {
        const m = k === 0 ? 0 : w - k;
        const aRe = (at(y, k, false) + at(y, m, false)) / 2;
        const aIm = (at(y, k, true) - at(y, m, true)) / 2;
        const bRe = b < 0 ? 0 : (at(b, k, false) + at(b, m, false)) / 2;
        const bIm = b < 0 ? 0 : (at(b, k, true) - at(b, m, true)) / 2;
        rowRe[k] = aRe - bIm;
        rowIm[k] = aIm + bRe;
      }
      this.rows.transform(rowRe, rowIm, true);
      for (let x = 0; x < w; x++) out[outOffset + y * w + x] = rowRe[x];
      if (b >= 0) for (let x = 0; x < w; x++) out[outOffset + b * w + x] = rowIm[x];
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
    const { height: h, width: w, halfWidth: hw, weight, re, im, rowRe, rowIm } = this;
    for (let y = 0; y < h; y += 2) {
      const b = y + 1 < h ? y + 1 : -1;
      for (let x = 0; x < w; x++) {
        rowRe[x] = g[gOffset + y * w + x];
        rowIm[x] = b < 0 ? 0 : g[gOffset + b * w + x];
      }
      this.rows.transform(rowRe, rowIm, false);
      for (let k = 0; k < hw; k++) {
        const m = k === 0 ? 0 : w - k;
        re[y * w + k] = (rowRe[k] + rowRe[m]) / 2;
        im[y * w + k] = (rowIm[k] - rowIm[m]) / 2;
        if (b >= 0) {
          re[b * w + k] = (rowIm[k] + rowIm[m]) / 2;
          im[b * w + k] = -(rowRe[k] - rowRe[m]) / 2;
        }
      }
    }
    for (let kx = 0; kx < hw; kx++) this.cols.transform(re, im, false, kx, w);
    const half = h * hw;
    for (let ky = 0; ky < h; ky++) {
      for (let kx = 0; kx < hw; kx++) {
        const k = ky * hw + kx;
        out[outOffset + k] = weight[k] * re[ky * w + kx];
        out[outOffset + half + k] = weight[k] * im[ky * w + kx];
      }
    }
  }
}
