/**
 * A mixed-radix complex FFT of any length (Cooley–Tukey, decimation in time: radix-4 and radix-2
 * butterflies, and each odd prime factor p as a p-point DFT by symmetric pairs, so lengths with a
 * large prime factor fall back to O(n·p)). The Fourier image parameterisation (fourier.ts) is
 * built on it.
 * Arrays are split: real parts and imaginary parts in two Float64Arrays. A call transforms many
 * sequences at once, the columns of a row-major [n, count] array: every butterfly's twiddle is
 * then looked up once for all of them, and the innermost loops run along contiguous memory.
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
  /** Per odd radix p: cos and sin of 2π·q·r/p for q, r = 1 … (p−1)/2, at r·(half + 1) + q. */
  private readonly oddTables = new Map<number, { c: Float64Array; s: Float64Array }>();
  /** The working array [n, count] and an odd stage's scratch [p, count], grown to the largest count asked. */
  private workRe = new Float64Array(0);
  private workIm = new Float64Array(0);
  private scratch = new Float64Array(0);

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
    for (const p of this.factors) {
      if (p % 2 === 0 || this.oddTables.has(p)) continue;
      const half = (p - 1) / 2;
      const c = new Float64Array((half + 1) * (half + 1));
      const s = new Float64Array((half + 1) * (half + 1));
      for (let r = 1; r <= half; r++) {
        for (let q = 1; q <= half; q++) {
          c[r * (half + 1) + q] = this.cos[((q * r) % p) * (n / p)];
          s[r * (half + 1) + q] = -this.sin[((q * r) % p) * (n / p)];
        }
      }
      this.oddTables.set(p, { c, s });
    }
  }

  /**
   * In place: X[k] = Σ x[j]·e^(∓2πi·jk/n) for each of the `count` columns of `re`/`im` taken as
   * row-major [n, count] (count 1: one sequence); `inverse` takes e^(+…), unscaled.
   */
  transform(re: Float64Array, im: Float64Array, inverse = false, count = 1): void {
    const { n, order } = this;
    if (this.workRe.length < n * count) {
      this.workRe = new Float64Array(n * count);
      this.workIm = new Float64Array(n * count);
    }
    const { workRe: wr, workIm: wi } = this;
    // The inverse transform is the forward one with real and imaginary parts swapped, in and out.
    const [inRe, inIm] = inverse ? [im, re] : [re, im];
    for (let i = 0; i < n; i++) {
      const from = order[i] * count;
      const to = i * count;
      for (let k = 0; k < count; k++) {
        wr[to + k] = inRe[from + k];
        wi[to + k] = inIm[from + k];
      }
    }
    let size = 1;
    for (const p of this.factors) {
      const span = size; // each stage merges p transforms of length `span` into one of length span·p
      size *= p;
      const step = n / size; // twiddle e^(−2πi·j/size) = table[j·step]
      if (p === 2) this.radix2(span, size, step, count);
      else if (p === 4) this.radix4(span, size, step, count);
      else this.radixP(p, span, size, step, count);
    }
    inRe.set(wr.subarray(0, n * count));
    inIm.set(wi.subarray(0, n * count));
  }

  private radix2(span: number, size: number, step: number, count: number): void {
    const { workRe: wr, workIm: wi, cos, sin, n } = this;
    for (let block = 0; block < n; block += size) {
      for (let j = 0; j < span; j++) {
        const c = cos[j * step];
        const s = sin[j * step];
        const a0 = (block + j) * count;
        const b0 = a0 + span * count;
        for (let k = 0; k < count; k++) {
          const a = a0 + k;
          const b = b0 + k;
          const br = wr[b] * c - wi[b] * s;
          const bi = wr[b] * s + wi[b] * c;
          wr[b] = wr[a] - br;
          wi[b] = wi[a] - bi;
          wr[a] += br;
          wi[a] += bi;
        }
      }
    }
  }

  private radix4(span: number, size: number, step: number, count: number): void {
    const { workRe: wr, workIm: wi, cos, sin, n } = this;
    const gap = span * count;
    for (let block = 0; block < n; block += size) {
      for (let j = 0; j < span; j++) {
        const t1 = j * step;
        const c1 = cos[t1];
        const s1 = sin[t1];
        const c2 = cos[2 * t1];
        const s2 = sin[2 * t1];
        const c3 = cos[3 * t1];
        const s3 = sin[3 * t1];
        const first = (block + j) * count;
        for (let i0 = first; i0 < first + count; i0++) {
          const i1 = i0 + gap;
          const i2 = i1 + gap;
          const i3 = i2 + gap;
          const x0r = wr[i0];
          const x0i = wi[i0];
          const x1r = wr[i1] * c1 - wi[i1] * s1;
          const x1i = wr[i1] * s1 + wi[i1] * c1;
          const x2r = wr[i2] * c2 - wi[i2] * s2;
          const x2i = wr[i2] * s2 + wi[i2] * c2;
          const x3r = wr[i3] * c3 - wi[i3] * s3;
          const x3i = wr[i3] * s3 + wi[i3] * c3;
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
  }

  /**
   * A stage of an odd radix p: the p-point DFT of the twiddled inputs, by pairs: with
   * s_q = x_q + x_(p−q) and d_q = x_q − x_(p−q), X_r and X_(p−r) are A ∓ iB where
   * A = x_0 + Σ s_q·cos(2πqr/p) and B = Σ d_q·sin(2πqr/p) (q = 1 … (p−1)/2): a quarter of the
   * multiplications of the matrix product. The twiddled inputs' sums and differences wait in
   * `scratch`, [s_q real, s_q imaginary, d_q real, d_q imaginary] per q, each [count].
   */
  private radixP(p: number, span: number, size: number, step: number, count: number): void {
    const { workRe: wr, workIm: wi, cos, sin, n } = this;
    const half = (p - 1) / 2;
    const { c, s: sn } = this.oddTables.get(p)!;
    if (this.scratch.length < 4 * (half + 1) * count) this.scratch = new Float64Array(4 * (half + 1) * count);
    const scratch = this.scratch;
    const gap = span * count;
    for (let block = 0; block < n; block += size) {
      for (let j = 0; j < span; j++) {
        const first = (block + j) * count;
        for (let q = 1; q <= half; q++) {
          const tq = j * q * step; // < span·p·step = n
          const tm = j * (p - q) * step;
          const cq = cos[tq];
          const sq = sin[tq];
          const cm = cos[tm];
          const sm = sin[tm];
          const at = 4 * q * count;
          for (let k = 0; k < count; k++) {
            const a = first + q * gap + k;
            const b = first + (p - q) * gap + k;
            const xr = wr[a] * cq - wi[a] * sq;
            const xi = wr[a] * sq + wi[a] * cq;
            const yr = wr[b] * cm - wi[b] * sm;
            const yi = wr[b] * sm + wi[b] * cm;
            scratch[at + k] = xr + yr;
            scratch[at + count + k] = xi + yi;
            scratch[at + 2 * count + k] = xr - yr;
            scratch[at + 3 * count + k] = xi - yi;
          }
        }
        for (let k = 0; k < count; k++) {
          const x0r = wr[first + k];
          const x0i = wi[first + k];
          let totalR = x0r;
          let totalI = x0i;
          for (let q = 1; q <= half; q++) {
            totalR += scratch[4 * q * count + k];
            totalI += scratch[(4 * q + 1) * count + k];
          }
          for (let r = 1; r <= half; r++) {
            let ar = x0r;
            let ai = x0i;
            let br = 0;
            let bi = 0;
            for (let q = 1, t = r * (half + 1) + 1; q <= half; q++, t++) {
              const at = 4 * q * count + k;
              ar += scratch[at] * c[t];
              ai += scratch[at + count] * c[t];
              br += scratch[at + 2 * count] * sn[t];
              bi += scratch[at + 3 * count] * sn[t];
            }
            // X_r = A − iB, X_(p−r) = A + iB
            wr[first + r * gap + k] = ar + bi;
            wi[first + r * gap + k] = ai - br;
            wr[first + (p - r) * gap + k] = ar - bi;
            wi[first + (p - r) * gap + k] = ai + br;
          }
          wr[first + k] = totalR;
          wi[first + k] = totalI;
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
