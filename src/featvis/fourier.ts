/**
 * Lucid's Fourier parameterisation of an image (`param.fft_image`): each channel is the inverse
 * 2-D DFT of a half spectrum (columns kx = 0 … ⌊w/2⌋, as a real FFT keeps them), each coefficient
 * scaled by 1/frequency (frequencies below 1/max(h, w) count as that), times √(h·w) so that the
 * map is about unitary, then divided by 4: natural images have about that 1/f spectrum, so
 * gradient steps move every frequency about as far. Columns that stand for themselves and their
 * mirror (0 < kx < w/2) count twice, so the image is the real inverse FFT of the spectrum, as
 * Lucid's irfft2d; its imaginary part is dropped. `adjoint` is the exact transpose of `image`.
 */
import { fft2d } from './fft';

export class FourierImage {
  /** Columns of the half spectrum. */
  readonly halfWidth: number;
  /** Per coefficient [h, halfWidth]: the 1/frequency scale, the √(hw)/4 and the ×2 of mirrored columns, over h·w (the inverse DFT's 1/n). */
  private readonly weight: Float64Array;
  private readonly re: Float64Array;
  private readonly im: Float64Array;

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
  }

  /** Coefficients per channel: real parts then imaginary parts, each [h, halfWidth]. */
  get coefficients(): number {
    return 2 * this.height * this.halfWidth;
  }

  /** The image [h, w] of one channel's coefficients (`spectrum` from `offset`), written to `out` from `outOffset`. */
  image(spectrum: Float64Array, offset: number, out: Float64Array, outOffset: number): void {
    const { height: h, width: w, halfWidth: hw, weight, re, im } = this;
    re.fill(0);
    im.fill(0);
    const half = h * hw;
    for (let ky = 0; ky < h; ky++) {
      for (let kx = 0; kx < hw; kx++) {
        const k = ky * hw + kx;
        re[ky * w + kx] = weight[k] * spectrum[offset + k];
        im[ky * w + kx] = weight[k] * spectrum[offset + half + k];
      }
    }
    fft2d(re, im, h, w, true);
    for (let i = 0; i < h * w; i++) out[outOffset + i] = re[i];
  }

  /** The transpose of `image`: the gradient with respect to the coefficients of a gradient `g` [h, w] to the image. */
  adjoint(g: Float64Array, gOffset: number, out: Float64Array, outOffset: number): void {
    const { height: h, width: w, halfWidth: hw, weight, re, im } = this;
    for (let i = 0; i < h * w; i++) re[i] = g[gOffset + i];
    im.fill(0);
    // Re(A·z) with A = conj(F)/n·weight has the transpose z ↦ weight·F(g)/n for real g (F: forward DFT; the 1/n is in weight).
    fft2d(re, im, h, w, false);
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
