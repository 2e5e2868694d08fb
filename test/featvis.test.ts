/**
 * The pieces of feature visualization's optimisation (src/featvis/), each against an independent
 * computation: the FFT against a direct DFT, the Fourier parameterisation against its defining sum
 * and its adjoint as its transpose, the colour map's gradient against finite differences, the
 * resampling's adjoint as its transpose, Adam, and the seeded generator.
 */
import assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import { Adam } from '../src/featvis/adam';
import { COLOR_MIX, toPixels, toPixelsAdjoint } from '../src/featvis/color';
import { fftPlan } from '../src/featvis/fft';
import { FourierImage } from '../src/featvis/fourier';
import { Random } from '../src/featvis/random';
import { drawTransform, NO_TRANSFORM, Resampling } from '../src/featvis/transforms';

const randomArray = (random: Random, n: number) => Float64Array.from({ length: n }, () => random.normal());
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i], 0);
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** The DFT by its definition, e^(∓2πi·jk/n). */
function directDft(re: Float64Array, im: Float64Array, inverse: boolean): [Float64Array, Float64Array] {
  const n = re.length;
  const [outRe, outIm] = [new Float64Array(n), new Float64Array(n)];
  const sign = inverse ? 1 : -1;
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) {
      const a = (sign * 2 * Math.PI * ((j * k) % n)) / n;
      outRe[k] += re[j] * Math.cos(a) - im[j] * Math.sin(a);
      outIm[k] += re[j] * Math.sin(a) + im[j] * Math.cos(a);
    }
  }
  return [outRe, outIm];
}

describe('the FFT', () => {
  for (const n of [1, 2, 3, 4, 5, 7, 8, 12, 16, 28, 30, 49, 97, 128, 224]) {
    test(`length ${n} (radices ${fftPlan(n).factors.join('·') || '—'}) equals a direct DFT, both ways`, () => {
      const random = new Random(n);
      const [re, im] = [randomArray(random, n), randomArray(random, n)];
      for (const inverse of [false, true]) {
        const [wantRe, wantIm] = directDft(re, im, inverse);
        const [gotRe, gotIm] = [Float64Array.from(re), Float64Array.from(im)];
        fftPlan(n).transform(gotRe, gotIm, inverse);
        const error = Math.max(maxAbs(gotRe.map((v, i) => v - wantRe[i])), maxAbs(gotIm.map((v, i) => v - wantIm[i])));
        assert.ok(error < 1e-9 * n, `n = ${n}, inverse ${inverse}: error ${error}`);
      }
    });
  }
});

describe('the FFT of many sequences at once', () => {
  test('the columns of an [n, count] array (224 × 5, 28 × 3) are each transformed as alone, both ways', () => {
    const random = new Random(5);
    for (const [n, count] of [
      [224, 5],
      [28, 3],
    ]) {
      for (const inverse of [false, true]) {
        const [re, im] = [randomArray(random, n * count), randomArray(random, n * count)];
        const [allRe, allIm] = [Float64Array.from(re), Float64Array.from(im)];
        fftPlan(n).transform(allRe, allIm, inverse, count);
        for (let k = 0; k < count; k++) {
          const column = (a: Float64Array) => Float64Array.from({ length: n }, (_, i) => a[i * count + k]);
          const [oneRe, oneIm] = [column(re), column(im)];
          fftPlan(n).transform(oneRe, oneIm, inverse);
          assert.deepEqual([column(allRe), column(allIm)], [oneRe, oneIm], `n = ${n}, column ${k}, inverse ${inverse}`);
        }
      }
    }
  });
});

describe('the Fourier image', () => {
  for (const [h, w] of [
    [8, 8],
    [7, 9],
    [28, 28],
  ]) {
    test(`${h}×${w}: the image is its defining sum (1/f-scaled half spectrum, real inverse DFT), and adjoint is its transpose`, () => {
      const f = new FourierImage(h, w);
      const hw = Math.floor(w / 2) + 1;
      assert.equal(f.coefficients, 2 * h * hw);
      const random = new Random(h * w);
      const z = randomArray(random, f.coefficients);
      const image = new Float64Array(h * w);
      f.image(z, 0, image, 0);
      // The sum, written out: Lucid's scale 1/max(f, 1/max(h, w)) · √(hw) / 4, mirrored columns twice, 1/(hw).
      const want = new Float64Array(h * w);
      for (let ky = 0; ky < h; ky++) {
        const fy = (ky <= (h - 1) / 2 ? ky : ky - h) / h;
        for (let kx = 0; kx < hw; kx++) {
          const scale = ((kx > 0 && 2 * kx !== w ? 2 : 1) * Math.sqrt(h * w)) / Math.max(Math.hypot(fy, kx / w), 1 / Math.max(h, w)) / 4 / (h * w);
          const [a, b] = [z[ky * hw + kx], z[h * hw + ky * hw + kx]];
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              const t = 2 * Math.PI * ((ky * y) / h + (kx * x) / w);
              want[y * w + x] += scale * (a * Math.cos(t) - b * Math.sin(t));
            }
          }
        }
      }
      assert.ok(maxAbs(image.map((v, i) => v - want[i])) < 1e-9 * maxAbs(want), 'the image');
      const g = randomArray(random, h * w);
      const back = new Float64Array(f.coefficients);
      f.adjoint(g, 0, back, 0);
      const [lhs, rhs] = [dot(image, g), dot(z, back)];
      assert.ok(Math.abs(lhs - rhs) < 1e-9 * Math.abs(lhs), `⟨Az, g⟩ = ${lhs}, ⟨z, Aᵀg⟩ = ${rhs}`);
    });
  }

  test('a pure cosine spectrum gives a real cosine image (what irfft2d gives for it)', () => {
    const [h, w] = [16, 16];
    const f = new FourierImage(h, w);
    const z = new Float64Array(f.coefficients);
    const hw = w / 2 + 1;
    z[0 * hw + 3] = 1; // kx = 3, ky = 0: a cos(2π·3x/16) pattern, constant down the columns
    const image = new Float64Array(h * w);
    f.image(z, 0, image, 0);
    const amplitude = image[0];
    assert.ok(amplitude > 0);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) assert.ok(Math.abs(image[y * w + x] - amplitude * Math.cos((2 * Math.PI * 3 * x) / w)) < 1e-12);
    // 1/f scaling: frequency 3/16 → scale 16/3, √256 / 4 = 4, ×2 mirrored, / 256
    assert.ok(Math.abs(amplitude - (2 * 16) / (3 / 16) / 4 / 256) < 1e-12, String(amplitude));
  });
});

describe('the decorrelated colour space', () => {
  test("Lucid's matrix, its largest column of norm 1", () => {
    const norms = [0, 1, 2].map((c) => Math.hypot(...COLOR_MIX.map((row) => row[c])));
    assert.ok(Math.abs(Math.max(...norms) - 1) < 1e-12);
    assert.ok(Math.abs(COLOR_MIX[0][0] - 0.26 / Math.hypot(0.26, 0.27, 0.27)) < 1e-12);
  });

  for (const channels of [1, 3]) {
    test(`${channels} channel(s): pixels in (0, 1), and the adjoint is the gradient (finite differences)`, () => {
      const n = 5;
      const random = new Random(channels);
      const t = randomArray(random, channels * n);
      const g = randomArray(random, channels * n);
      const pixels = new Float64Array(channels * n);
      toPixels(t, channels, pixels);
      assert.ok(pixels.every((p) => p > 0 && p < 1));
      const grad = new Float64Array(channels * n);
      toPixelsAdjoint(g, pixels, channels, grad);
      const value = (tt: Float64Array) => {
        const p = new Float64Array(channels * n);
        toPixels(tt, channels, p);
        return dot(p, g);
      };
      for (let i = 0; i < t.length; i++) {
        const [up, down] = [Float64Array.from(t), Float64Array.from(t)];
        up[i] += 1e-6;
        down[i] -= 1e-6;
        const numeric = (value(up) - value(down)) / 2e-6;
        assert.ok(Math.abs(numeric - grad[i]) < 1e-7, `∂/∂t[${i}]: ${numeric} vs ${grad[i]}`);
      }
    });
  }
});

describe('the random transforms', () => {
  test('the identity samples the image pixel for pixel', () => {
    const random = new Random(1);
    const image = randomArray(random, 3 * 10 * 10);
    const out = new Float64Array(3 * 10 * 10);
    new Resampling(10, 10, 10, NO_TRANSFORM).sample(image, 3, out);
    assert.ok(maxAbs(out.map((v, i) => v - image[i])) < 1e-12);
  });

  test('a shift of one pixel moves the image by one pixel, grey coming in', () => {
    const random = new Random(2);
    const image = randomArray(random, 6 * 6);
    const out = new Float64Array(6 * 6);
    new Resampling(6, 6, 6, { ...NO_TRANSFORM, shift1: [0, 1] }).sample(image, 1, out);
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) assert.ok(Math.abs(out[y * 6 + x] - (x < 5 ? image[y * 6 + x + 1] : 0.5)) < 1e-12);
    }
  });

  test('a resampling redrawn in place equals one made for that draw (taps, weights and the fill near the border)', () => {
    const random = new Random(4);
    const r = new Resampling(40, 28, 28, drawTransform(random, 40));
    for (let k = 0; k < 5; k++) {
      const draw = drawTransform(random, 40);
      r.set(draw);
      const fresh = new Resampling(40, 28, 28, draw);
      assert.deepEqual([r.taps, r.weights, r.filled], [fresh.taps, fresh.weights, fresh.filled]);
    }
    assert.ok(
      r.filled.some((v) => v > 0),
      'some pixels read outside the image',
    );
  });

  test("draws stay within Lucid's ranges, and the adjoint of each is its transpose (28 → 28, 40 → 28)", () => {
    const random = new Random(3);
    for (const size of [28, 40]) {
      for (let k = 0; k < 20; k++) {
        const draw = drawTransform(random, size);
        assert.ok(draw.scale >= 0.9 - 1e-12 && draw.scale <= 1.1 + 1e-12 && Math.abs(draw.angle) <= 10);
        assert.ok(Math.abs(draw.shift1[0]) <= (4 * size) / 128 && Math.abs(draw.shift2[1]) <= (2 * size) / 128);
        const r = new Resampling(size, 28, 28, draw);
        const x = randomArray(random, 2 * size * size);
        const g = randomArray(random, 2 * 28 * 28);
        const [ax, a0] = [new Float64Array(2 * 28 * 28), new Float64Array(2 * 28 * 28)];
        r.sample(x, 2, ax);
        r.sample(new Float64Array(2 * size * size), 2, a0); // the fill's part, which is no part of the linear map
        const back = new Float64Array(2 * size * size);
        r.sampleAdjoint(g, 2, back);
        const [lhs, rhs] = [
          dot(
            ax.map((v, i) => v - a0[i]),
            g,
          ),
          dot(x, back),
        ];
        assert.ok(Math.abs(lhs - rhs) < 1e-9 * (1 + Math.abs(lhs)), `${lhs} vs ${rhs}`);
      }
    }
  });
});

describe('Adam and the seeded generator', () => {
  test("Adam's first step moves every parameter by the learning rate along its gradient's sign, and it climbs to a maximum", () => {
    const adam = new Adam(3, 0.05);
    const x = Float64Array.of(0, 0, 0);
    adam.ascend(x, Float64Array.of(2, -0.001, 300));
    assert.ok(Math.abs(x[0] - 0.05) < 1e-6 && Math.abs(x[1] + 0.05) < 1e-4 && Math.abs(x[2] - 0.05) < 1e-6, String(x));
    const y = Float64Array.of(0);
    const climb = new Adam(1, 0.05);
    for (let i = 0; i < 2000; i++) climb.ascend(y, Float64Array.of(-2 * (y[0] - 3))); // maximise −(y − 3)²
    assert.ok(Math.abs(y[0] - 3) < 0.01, String(y[0]));
  });

  test('the same seed gives the same numbers, another seed others; normals have mean 0 and the asked sd', () => {
    const draw = (seed: number) => {
      const r = new Random(seed);
      return Array.from({ length: 5 }, () => r.next());
    };
    assert.deepEqual(draw(42), draw(42));
    assert.notDeepEqual(draw(1), draw(2));
    const r = new Random(9);
    const xs = Array.from({ length: 20000 }, () => r.normal(0.5));
    const mean = xs.reduce((a, b) => a + b) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    assert.ok(Math.abs(mean) < 0.02 && Math.abs(sd - 0.5) < 0.02, `${mean} ${sd}`);
  });
});
