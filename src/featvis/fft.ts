/**
 * A mixed-radix complex FFT of any length (Cooley–Tukey, decimation in time: radix-4 and radix-2
 * butterflies, and each odd prime factor p as a p-point DFT by symmetric pairs, so lengths with a
 * large prime factor fall back to O(n·p)). The Fourier image parameterisation (fourier.ts) is
 * built on it.
 * Arrays are split: real parts and imaginary parts in two Float64Arrays.
 */

/** The transform of one length: the input's order for the butterflies and the twiddle factors. */
export class FftPlan {
  /** Radices in the order the stages run (the product is n). */
  readonly factors: number[];
  /** Where each position of the working array reads the input from (mixed-radix digit reversal). */
  private readonly order: Int32Array;
  /** e^(−2πi·t/n), t = 0 … n−1. */
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly workRe: Float64Array;
  private readonly workIm: Float64Array;

  constructor(readonly n: number) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`an FFT needs a length ≥ 1, got ${n}`);
    this.factors = factorize(n);
    this.order = Int32Array.from(digitReversal(0, 1, this.factors));
    this.cos = new Float64Array(n);
    this.sin = new Float64Array(n);
    for (let t = 0; t < n; t++) {
      this.cos[t] = Math.cos((2 * Math.PI * t) / n);
      this.sin[t] = -Math.sin((2 * Math.PI * t) / n);
    }
    this.workRe = new Float64Array(n);
    this.workIm = new Float64Array(n);
  }

  /**
   * In place: X[k] = Σ x[j]·e^(∓2πi·jk/n) over `re`/`im` from `offset` every `stride` (so rows and
   * columns of a 2-D array are transformed where they lie); `inverse` takes e^(+…), unscaled.
   */
  transform(re: Float64Array, im: Float64Array, inverse = false, offset = 0, stride = 1): void {
    const { n, order, workRe: wr, workIm: wi } = this;
    const conj = inverse ? -1 : 1;
    for (let i = 0; i < n; i++) {
      const from = offset + order[i] * stride;
      wr[i] = re[from];
      wi[i] = conj * im[from];
    }
    let size = 1;
    for (const p of this.factors) {
      const span = size; // each stage merges p transforms of length `span` into one of length span·p
      size *= p;
      const step = n / size; // twiddle e^(−2πi·j/size) = table[j·step]
      if (p === 2) this.radix2(span, size, step);
      else if (p === 4) this.radix4(span, size, step);
      else this.radixP(p, span, size, step);
    }
    for (let i = 0; i < n; i++) {
      const to = offset + i * stride;
      re[to] = wr[i];
      im[to] = conj * wi[i];
    }
  }

  private radix2(span: number, size: number, step: number): void {
    const { workRe: wr, workIm: wi, cos, sin, n } = this;
    for (let block = 0; block < n; block += size) {
      for (let j = 0; j < span; j++) {
        const a = block + j;
        const b = a + span;
        const c = cos[j * step];
        const s = sin[j * step];
        const br = wr[b] * c - wi[b] * s;
        const bi = wr[b] * s + wi[b] * c;
        wr[b] = wr[a] - br;
        wi[b] = wi[a] - bi;
        wr[a] += br;
        wi[a] += bi;
      }
    }
  }

  private radix4(span: number, size: number, step: number): void {
    const { workRe: wr, workIm: wi, cos, sin, n } = this;
    for (let block = 0; block < n; block += size) {
      for (let j = 0; j < span; j++) {
        const i0 = block + j;
        const i1 = i0 + span;
        const i2 = i1 + span;
        const i3 = i2 + span;
        const t1 = j * step;
        const t2 = 2 * t1;
        const t3 = 3 * t1;
        const x0r = wr[i0];
        const x0i = wi[i0];
        const x1r = wr[i1] * cos[t1] - wi[i1] * sin[t1];
        const x1i = wr[i1] * sin[t1] + wi[i1] * cos[t1];
        const x2r = wr[i2] * cos[t2] - wi[i2] * sin[t2];
        const x2i = wr[i2] * sin[t2] + wi[i2] * cos[t2];
        const x3r = wr[i3] * cos[t3] - wi[i3] * sin[t3];
        const x3i = wr[i3] * sin[t3] + wi[i3] * cos[t3];
        const ar = x0r + x2r;
        const ai = x0i + x2i;
        const br = x0r - x2r;
        const bi = x0i - x2i;
        const cr = x1r + x3r;
        const ci = x1i + x3i;
        // (x1 − x3)·(−i): the forward transform's quarter turn
        const dr = x1i - x3i;
        const di = x3r - x1r;
        wr[i0] = ar + cr;
        wi[i0] = ai + ci;
        wr[i1] = br + dr;
        wi[i1] = bi + di;
        wr[i2] = ar - cr;
        wi[i2] = ai - ci;
        wr[i3] = br - dr;
        wi[i3] = bi - di;
      }
    }
  }

  /**
   * A stage of an odd radix p: the p-point DFT of the twiddled inputs, by pairs: with
   * s_q = x_q + x_(p−q) and d_q = x_q − x_(p−q), X_r and X_(p−r) are A ∓ iB where
   * A = x_0 + Σ s_q·cos(2πqr/p) and B = Σ d_q·sin(2πqr/p) (q = 1 … (p−1)/2): a quarter of the
   * multiplications of the matrix product.
   */
  private radixP(p: number, span: number, size: number, step: number): void {
    const { workRe: wr, workIm: wi, cos, sin, n } = this;
    const half = (p - 1) / 2;
    const xr = new Float64Array(p);
    const xi = new Float64Array(p);
    const [sr, si, dr, di] = [0, 0, 0, 0].map(() => new Float64Array(half + 1));
    // cos and sin of 2π·q·r/p for q, r = 1 … half (table[(q·r mod p)·n/p]; sin there is −sin).
    const c = new Float64Array((half + 1) * (half + 1));
    const sn = new Float64Array((half + 1) * (half + 1));
    for (let r = 1; r <= half; r++) {
      for (let q = 1; q <= half; q++) {
        c[r * (half + 1) + q] = cos[((q * r) % p) * (n / p)];
        sn[r * (half + 1) + q] = -sin[((q * r) % p) * (n / p)];
      }
    }
    for (let block = 0; block < n; block += size) {
      for (let j = 0; j < span; j++) {
        for (let q = 0; q < p; q++) {
          const at = block + j + q * span;
          const t = j * q * step; // < span·p·step = n
          xr[q] = wr[at] * cos[t] - wi[at] * sin[t];
          xi[q] = wr[at] * sin[t] + wi[at] * cos[t];
        }
        let totalR = xr[0];
        let totalI = xi[0];
        for (let q = 1; q <= half; q++) {
          sr[q] = xr[q] + xr[p - q];
          si[q] = xi[q] + xi[p - q];
          dr[q] = xr[q] - xr[p - q];
          di[q] = xi[q] - xi[p - q];
          totalR += sr[q];
          totalI += si[q];
        }
        wr[block + j] = totalR;
        wi[block + j] = totalI;
        for (let r = 1; r <= half; r++) {
          let ar = xr[0];
          let ai = xi[0];
          let br = 0;
          let bi = 0;
          for (let q = 1, k = r * (half + 1) + 1; q <= half; q++, k++) {
            ar += sr[q] * c[k];
            ai += si[q] * c[k];
            br += dr[q] * sn[k];
            bi += di[q] * sn[k];
          }
          // X_r = A − iB, X_(p−r) = A + iB
          wr[block + j + r * span] = ar + bi;
          wi[block + j + r * span] = ai - br;
          wr[block + j + (p - r) * span] = ar - bi;
          wi[block + j + (p - r) * span] = ai + br;
        }
      }
    }
  }
}

/** n's prime factors with pairs of 2 as 4, smallest first (4s before a lone 2). */
function factorize(n: number): number[] {
  const factors: number[] = [];
  let rest = n;
  while (rest % 4 === 0) {
    factors.push(4);
    rest /= 4;
  }
  if (rest % 2 === 0) {
    factors.push(2);
    rest /= 2;
  }
  for (let p = 3; p * p <= rest; p += 2) {
    while (rest % p === 0) {
      factors.push(p);
      rest /= p;
    }
  }
  if (rest > 1) factors.push(rest);
  return factors;
}

/**
 * The input index of each position of the working array: the last stage's radix p splits the
 * input into p interleaved sequences (x[p·m + q]), each transformed by the stages before it.
 */
function digitReversal(offset: number, stride: number, factors: number[]): number[] {
  if (factors.length === 0) return [offset];
  const p = factors[factors.length - 1];
  const inner = factors.slice(0, -1);
  const out: number[] = [];
  for (let q = 0; q < p; q++) out.push(...digitReversal(offset + q * stride, stride * p, inner));
  return out;
}

const plans = new Map<number, FftPlan>();

/** The plan of length n, made once. */
export function fftPlan(n: number): FftPlan {
  let plan = plans.get(n);
  if (!plan) {
    plan = new FftPlan(n);
    plans.set(n, plan);
  }
  return plan;
}
