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
      else if (p === 7) this.radix7(span, size, step, count);
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

  /** radixP for p = 7 (224 = 2⁵·7, the common input size), written out: the same operations in the same order, held in registers. */
  private radix7(span: number, size: number, step: number, count: number): void {
    const { workRe: wr, workIm: wi, cos, sin, n } = this;
    const { c, s: sn } = this.oddTables.get(7)!;
    // cos and sin of 2π·q·r/7 at r·4 + q
    const c11 = c[5];
    const c12 = c[6];
    const c13 = c[7];
    const c21 = c[9];
    const c22 = c[10];
    const c23 = c[11];
    const c31 = c[13];
    const c32 = c[14];
    const c33 = c[15];
    const s11 = sn[5];
    const s12 = sn[6];
    const s13 = sn[7];
    const s21 = sn[9];
    const s22 = sn[10];
    const s23 = sn[11];
    const s31 = sn[13];
    const s32 = sn[14];
    const s33 = sn[15];
    const gap = span * count;
    for (let block = 0; block < n; block += size) {
      for (let j = 0; j < span; j++) {
        const t = j * step;
        const tc1 = cos[t];
        const ts1 = sin[t];
        const tc2 = cos[2 * t];
        const ts2 = sin[2 * t];
        const tc3 = cos[3 * t];
        const ts3 = sin[3 * t];
        const tc4 = cos[4 * t];
        const ts4 = sin[4 * t];
        const tc5 = cos[5 * t];
        const ts5 = sin[5 * t];
        const tc6 = cos[6 * t];
        const ts6 = sin[6 * t];
        const first = (block + j) * count;
        for (let i0 = first; i0 < first + count; i0++) {
          const i1 = i0 + gap;
          const i2 = i0 + 2 * gap;
          const i3 = i0 + 3 * gap;
          const i4 = i0 + 4 * gap;
          const i5 = i0 + 5 * gap;
          const i6 = i0 + 6 * gap;
          const x0r = wr[i0];
          const x0i = wi[i0];
          const x1r = wr[i1] * tc1 - wi[i1] * ts1;
          const x1i = wr[i1] * ts1 + wi[i1] * tc1;
          const x6r = wr[i6] * tc6 - wi[i6] * ts6;
          const x6i = wr[i6] * ts6 + wi[i6] * tc6;
          const x2r = wr[i2] * tc2 - wi[i2] * ts2;
          const x2i = wr[i2] * ts2 + wi[i2] * tc2;
          const x5r = wr[i5] * tc5 - wi[i5] * ts5;
          const x5i = wr[i5] * ts5 + wi[i5] * tc5;
          const x3r = wr[i3] * tc3 - wi[i3] * ts3;
          const x3i = wr[i3] * ts3 + wi[i3] * tc3;
          const x4r = wr[i4] * tc4 - wi[i4] * ts4;
          const x4i = wr[i4] * ts4 + wi[i4] * tc4;
          const s1r = x1r + x6r;
          const s1i = x1i + x6i;
          const d1r = x1r - x6r;
          const d1i = x1i - x6i;
          const s2r = x2r + x5r;
          const s2i = x2i + x5i;
          const d2r = x2r - x5r;
          const d2i = x2i - x5i;
          const s3r = x3r + x4r;
          const s3i = x3i + x4i;
          const d3r = x3r - x4r;
          const d3i = x3i - x4i;
          wr[i0] = x0r + s1r + s2r + s3r;
          wi[i0] = x0i + s1i + s2i + s3i;
          let ar = x0r + s1r * c11 + s2r * c12 + s3r * c13;
          let ai = x0i + s1i * c11 + s2i * c12 + s3i * c13;
          let br = d1r * s11 + d2r * s12 + d3r * s13;
          let bi = d1i * s11 + d2i * s12 + d3i * s13;
          wr[i1] = ar + bi;
          wi[i1] = ai - br;
          wr[i6] = ar - bi;
          wi[i6] = ai + br;
          ar = x0r + s1r * c21 + s2r * c22 + s3r * c23;
          ai = x0i + s1i * c21 + s2i * c22 + s3i * c23;
          br = d1r * s21 + d2r * s22 + d3r * s23;
          bi = d1i * s21 + d2i * s22 + d3i * s23;
          wr[i2] = ar + bi;
          wi[i2] = ai - br;
          wr[i5] = ar - bi;
          wi[i5] = ai + br;
          ar = x0r + s1r * c31 + s2r * c32 + s3r * c33;
          ai = x0i + s1i * c31 + s2i * c32 + s3i * c33;
          br = d1r * s31 + d2r * s32 + d3r * s33;
          bi = d1i * s31 + d2i * s32 + d3i * s33;
          wr[i3] = ar + bi;
          wi[i3] = ai - br;
          wr[i4] = ar - bi;
          wi[i4] = ai + br;
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
