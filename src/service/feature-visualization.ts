/**
 * Feature visualization by optimisation (Olah, Mordvintsev & Schubert, "Feature Visualization",
 * Distill 2017), with Lucid's defaults: an image that maximises a unit — its channel's mean, or
 * one position — found by gradient ascent from noise. The image is parameterised in Fourier
 * space scaled by 1/frequency (featvis/fourier.ts) and in a decorrelated colour space
 * (featvis/color.ts), randomly jittered, scaled and rotated at every step (featvis/transforms.ts),
 * and moved by Adam (lr 0.05). Each step is one run of the SALIENCY projection graph with the
 * objective's weights as its seed (engine/gradients.ts): the forward pass and the exact gradient
 * to the input; a batch of images runs together. With `diversity` (a batch of two or more),
 * Lucid's diversity term is subtracted: the images' Gram matrices of the unit's layer, made to
 * differ (one more forward pass per step). Deterministic for a seed (featvis/random.ts), and
 * cached by the model, the unit and every option.
 */
import { compileForward } from '../compiler/forward';
import { seedTensor } from '../compiler/projection';
import { seedShape, unitGridValues } from '../compiler/units';
import { Codec, decodeRecord, encodeRecord } from '../cache/entry';
import { resultKey } from '../cache/keys';
import { inputGradient } from '../engine/gradients';
import { ApiError, badInput } from '../errors';
import { Adam } from '../featvis/adam';
import { toPixels, toPixelsAdjoint } from '../featvis/color';
import { FourierImage } from '../featvis/fourier';
import { Random } from '../featvis/random';
import { drawTransform, NO_TRANSFORM, Resampling, TransformDraw } from '../featvis/transforms';
import type { Model, Unit } from '../model';
import type { Objective } from '../vocabulary';
import type { Services } from './services';
import { checkPosition } from './projection';
import type { Position } from './views';

/** What the optimisation gives. */
export interface FeatureVisualizationResult {
  /** The images, [batch, C, size, size], in [0, 1], the model's channels in RGB order (BGR models' swapped back). */
  pixels: Float32Array;
  /** Per image, the objective's value on it (untransformed, as the model sees the picture), on the layer's own activation. */
  values: number[];
  channels: number;
  size: number;
}

const RESULT: Codec<FeatureVisualizationResult> = {
  encode: ({ pixels, ...meta }) => encodeRecord({ meta, tensors: [pixels] }),
  decode: (bytes) => {
    const { meta, tensors } = decodeRecord<Omit<FeatureVisualizationResult, 'pixels'>>(bytes);
    return { ...meta, pixels: tensors[0] };
  },
};

/** What a client asks of a feature visualization; anything left out takes FEATURE_VISUALIZATION_DEFAULTS. */
export interface FeatureVisualizationRequest {
  objective?: Objective;
  /** The unit of the map, for objective POSITION only. */
  position?: Position;
  /** Side of the optimised image in pixels (default: the model input's larger side); stretched to the input. */
  size?: number;
  steps?: number;
  seed?: number;
  /** Images optimised together, each from its own noise. */
  batch?: number;
  /** Weight of Lucid's diversity term (batch ≥ 2), 0 for none. */
  diversity?: number;
  learningRate?: number;
}

export const FEATURE_VISUALIZATION_DEFAULTS = { objective: 'CHANNEL_MEAN', steps: 512, seed: 0, batch: 1, diversity: 0, learningRate: 0.05 } as const;

/** The spectrum's initial standard deviation (Lucid's fft_image sd). */
const INITIAL_SD = 0.01;
/** Diversity needs each image's Gram matrix of the layer's channels: bounded to layers of this many. */
const DIVERSITY_MAX_CHANNELS = 1024;

/** A feature visualization, as asked (every option resolved) and as computed. */
export interface FeatureVisualization {
  unit: Unit;
  options: Required<Omit<FeatureVisualizationRequest, 'position'>> & Pick<FeatureVisualizationRequest, 'position'>;
  result: FeatureVisualizationResult;
}

/** A request with its defaults, checked against the unit's map and the configured limits: BAD_USER_INPUT outside them. */
export function checkFeatureVisualization(services: Services, { model, layer }: Unit, request: FeatureVisualizationRequest): FeatureVisualization['options'] {
  const d = FEATURE_VISUALIZATION_DEFAULTS;
  const { featvisMaxSteps, featvisMaxSize, featvisMaxBatch } = services.config;
  const {
    objective = d.objective,
    position,
    steps = d.steps,
    seed = d.seed,
    batch = d.batch,
    diversity = d.diversity,
    learningRate = d.learningRate,
  } = request;
  const size = request.size ?? Math.max(model.inputShape[1], model.inputShape[2]);
  const within = (name: string, value: number, min: number, max: number, env?: string) => {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw badInput(`${name} must be an integer from ${min} to ${max}${env ? ` (${env})` : ''}, got ${value}`, { argument: name });
    }
  };
  within('steps', steps, 1, featvisMaxSteps, 'FEATVIS_MAX_STEPS');
  within('size', size, 8, featvisMaxSize, 'FEATVIS_MAX_SIZE');
  within('batch', batch, 1, featvisMaxBatch, 'FEATVIS_MAX_BATCH');
  within('seed', seed, 0, 2 ** 32 - 1);
  if (!(Number.isFinite(learningRate) && learningRate > 0 && learningRate <= 10))
    throw badInput(`learningRate must be in (0, 10], got ${learningRate}`, { argument: 'learningRate' });
  if (!(Number.isFinite(diversity) && diversity >= 0)) throw badInput(`diversity must be ≥ 0, got ${diversity}`, { argument: 'diversity' });
  const [Ct] = seedShape(layer.outputShape);
  if (diversity > 0 && batch < 2) throw badInput('diversity needs a batch of 2 or more images', { argument: 'diversity' });
  if (diversity > 0 && Ct > DIVERSITY_MAX_CHANNELS)
    throw badInput(`diversity is computed on layers of at most ${DIVERSITY_MAX_CHANNELS} channels; "${layer.name}" has ${Ct}`, { argument: 'diversity' });
  const checked = checkPosition(layer, position, objective === 'POSITION', 'objective');
  return { objective, position: checked, size, steps, seed, batch, diversity, learningRate };
}

/** How a job follows an optimisation: told the steps done after each, and asked whether to stop. */
export interface StepProgress {
  report: (done: number, total: number) => void;
  cancelled: () => boolean;
}

/** The result cache's key of a feature visualization: its model, unit and every (resolved) option. */
export function featureVisualizationResultKey({ model, layer, index }: Unit, options: FeatureVisualization['options']): string {
  return resultKey('feature-visualization', model, '', {
    layer: layer.name,
    channel: index,
    ...options,
    position: options.position ? [options.position.y, options.position.x] : null,
  });
}

/** The feature visualization of a unit: from the result cache, or optimised now (followed by `progress` if given). */
export async function visualizeUnit(
  services: Services,
  unit: Unit,
  request: FeatureVisualizationRequest,
  progress?: StepProgress,
): Promise<FeatureVisualization> {
  const options = checkFeatureVisualization(services, unit, request);
  const result = await services.cache.cached(featureVisualizationResultKey(unit, options), RESULT, () => optimise(services, unit, options, progress));
  return { unit, options, result };
}

/** The objective's weights on the layer's unit grid [Ct·Ht·Wt]: its value is their dot product with the activation. */
function objectiveWeights({ layer, index }: Unit, { objective, position }: FeatureVisualization['options']): Float32Array {
  const [Ct, Ht, Wt] = seedShape(layer.outputShape);
  const weights = new Float32Array(Ct * Ht * Wt);
  if (objective === 'POSITION') weights[(index * Ht + position!.y) * Wt + position!.x] = 1;
  else weights.fill(1 / (Ht * Wt), index * Ht * Wt, (index + 1) * Ht * Wt);
  return weights;
}

let nextImageKey = 0;

async function optimise(
  services: Services,
  unit: Unit,
  options: FeatureVisualization['options'],
  progress?: StepProgress,
): Promise<FeatureVisualizationResult> {
  const { model, layer } = unit;
  const { size: S, steps, seed, batch: B, diversity, learningRate } = options;
  const [C] = model.inputShape;
  // A ReLU's units are optimised through its input (Lucid's "pre_relu" layers): the ReLU passes no
  // gradient where a unit is 0, as most are on noise; ReLU being monotone, the maximum is the same.
  const rectify = layer.node.op === 'Relu';
  const target = rectify ? layer.node.proto.input[0] : seedTensor(model.graph, layer.node);
  const fourier = new FourierImage(S, S);
  const K = fourier.coefficients;
  const random = new Random(seed);
  const spectra = Array.from({ length: B }, () => Float64Array.from({ length: C * K }, () => random.normal(INITIAL_SD)));
  const adams = spectra.map((s) => new Adam(s.length, learningRate));
  const weights = objectiveWeights(unit, options);
  const images = spectra.map(() => new ImageState(model, fourier, C, S));
  const engine = services.engine;
  for (let step = 0; step < steps; step++) {
    if (progress?.cancelled()) throw new ApiError('CANCELLED', 'the feature visualization was cancelled'); // not cached; a request that joined this run computes for itself
    const draws = images.map(() => drawTransform(random, S));
    const inputs = images.map((img, b) => img.forward(spectra[b], draws[b]));
    const seeds =
      diversity > 0 ? await diversitySeeds(services, model, layer.tensor, layer.outputShape, inputs, weights, diversity) : inputs.map(() => weights);
    const grads = await Promise.all(
      inputs.map((data, b) => inputGradient(engine, model, { target, image: { key: `featvis/${nextImageKey++}`, data }, seed: seeds[b] })),
    );
    images.forEach((img, b) => adams[b].ascend(spectra[b], img.backward(grads[b].gradient)));
    progress?.report(step + 1, steps);
  }
  // The result as the model sees it, untransformed: its pixels, and the objective's value on them.
  const finals = images.map((img, b) => img.forward(spectra[b], NO_TRANSFORM));
  const outs = await Promise.all(
    finals.map((data) => inputGradient(engine, model, { target, image: { key: `featvis/${nextImageKey++}`, data }, seed: weights })),
  );
  const values = outs.map(({ activation }) => activation.reduce((sum, a, i) => sum + (rectify ? Math.max(0, a) : a) * weights[i], 0));
  const pixels = new Float32Array(B * C * S * S);
  images.forEach((img, b) => pixels.set(img.pixels, b * C * S * S));
  return { pixels, values, channels: C, size: S };
}

/**
 * One image of the batch: from its spectrum to the model's input (Fourier → colour → pixels →
 * transform → normalisation), remembering what the way back needs.
 */
class ImageState {
  /** [C, S, S] in [0, 1], in the optimised (RGB) order. */
  readonly pixels: Float64Array;
  private readonly t: Float64Array;
  private readonly sampled: Float64Array;
  private readonly gradPixels: Float64Array;
  private readonly gradT: Float64Array;
  private readonly gradSpectrum: Float64Array;
  /** The last forward()'s transform, redrawn in place at every step. */
  private readonly resampling: Resampling;
  /** Per model input channel: the optimised channel it reads, and d(input)/d(pixel in [0, 1]). */
  private readonly source: number[];
  private readonly slope: number[];
  private readonly offset: number[];

  constructor(
    private readonly model: Model,
    private readonly fourier: FourierImage,
    private readonly C: number,
    private readonly S: number,
  ) {
    const p = model.preprocessing;
    this.pixels = new Float64Array(C * S * S);
    this.t = new Float64Array(C * S * S);
    this.gradPixels = new Float64Array(C * S * S);
    this.gradT = new Float64Array(C * S * S);
    this.gradSpectrum = new Float64Array(C * fourier.coefficients);
    const [, H, W] = model.inputShape;
    this.sampled = new Float64Array(C * H * W);
    this.resampling = new Resampling(S, H, W, NO_TRANSFORM);
    this.source = Array.from({ length: C }, (_, c) => (p.channels === 'BGR' && C === 3 ? 2 - c : c));
    this.slope = Array.from({ length: C }, (_, c) => (255 * p.scale) / (p.std[c] ?? p.std[0]));
    this.offset = Array.from({ length: C }, (_, c) => -(p.mean[c] ?? p.mean[0]) / (p.std[c] ?? p.std[0]));
  }

  /** The model input [C, H, W] for the spectrum under the transform. */
  forward(spectrum: Float64Array, draw: TransformDraw): Float32Array {
    const { C, S, fourier } = this;
    const n = S * S;
    for (let c = 0; c < C; c++) fourier.image(spectrum, c * fourier.coefficients, this.t, c * n);
    toPixels(this.t, C, this.pixels);
    const [, H, W] = this.model.inputShape;
    this.resampling.set(draw);
    this.resampling.sample(this.pixels, C, this.sampled);
    const input = new Float32Array(C * H * W);
    for (let c = 0; c < C; c++) {
      const from = this.source[c] * H * W;
      for (let i = 0; i < H * W; i++) input[c * H * W + i] = this.sampled[from + i] * this.slope[c] + this.offset[c];
    }
    return input;
  }

  /** The gradient to the spectrum of a gradient to the last forward()'s input. */
  backward(gradient: Float32Array): Float64Array {
    const { C, S, fourier } = this;
    const [, H, W] = this.model.inputShape;
    for (let c = 0; c < C; c++) {
      const to = this.source[c] * H * W;
      for (let i = 0; i < H * W; i++) this.sampled[to + i] = gradient[c * H * W + i] * this.slope[c];
    }
    this.resampling.sampleAdjoint(this.sampled, C, this.gradPixels);
    toPixelsAdjoint(this.gradPixels, this.pixels, C, this.gradT);
    for (let c = 0; c < C; c++) fourier.adjoint(this.gradT, c * S * S, this.gradSpectrum, c * fourier.coefficients);
    return this.gradSpectrum;
  }
}

/**
 * Each image's seed when diversity is asked: the objective's weights minus `weight` times the
 * gradient of Lucid's diversity term, Σ_{i≠j} ⟨Ĝᵢ, Ĝⱼ⟩ / B, where Ĝ is an image's Gram matrix of
 * the layer's channels (over positions) divided by its norm. The activations come from a forward
 * pass of the batch.
 */
async function diversitySeeds(
  services: Services,
  model: Model,
  tensor: string,
  shape: number[],
  inputs: Float32Array[],
  weights: Float32Array,
  weight: number,
): Promise<Float32Array[]> {
  const [Ct, Ht, Wt] = seedShape(shape);
  const P = Ht * Wt;
  const acts = await Promise.all(
    inputs.map(async (data) => {
      const [out] = await services.engine.forward(model, `forward/${tensor}`, () => compileForward(model.graph, [tensor]), {
        key: `featvis/${nextImageKey++}`,
        data,
      });
      return unitGridValues(out, shape);
    }),
  );
  const B = acts.length;
  const grams = acts.map((a) => {
    const g = new Float64Array(Ct * Ct);
    for (let i = 0; i < Ct; i++) {
      for (let j = i; j < Ct; j++) {
        let s = 0;
        for (let p = 0; p < P; p++) s += a[i * P + p] * a[j * P + p];
        g[i * Ct + j] = g[j * Ct + i] = s;
      }
    }
    let squares = 0;
    for (const v of g) squares += v * v;
    const norm = Math.max(Math.sqrt(squares), 1e-10);
    return { normalised: g.map((v) => v / norm), norm };
  });
  const total = new Float64Array(Ct * Ct);
  for (const { normalised } of grams) for (let k = 0; k < total.length; k++) total[k] += normalised[k];
  return acts.map((a, b) => {
    const { normalised: gHat, norm } = grams[b];
    // dD/dĜ_b = 2/B · Σ_{j≠b} Ĝ_j; through the normalisation: (U − Ĝ⟨U, Ĝ⟩)/‖G‖; through G = aaᵀ: (V + Vᵀ)a = 2Va (V symmetric).
    const U = total.map((v, k) => (2 / B) * (v - gHat[k]));
    let dot = 0;
    for (let k = 0; k < U.length; k++) dot += U[k] * gHat[k];
    const V = U.map((u, k) => (u - gHat[k] * dot) / norm);
    const seed = Float32Array.from(weights);
    for (let i = 0; i < Ct; i++) {
      for (let p = 0; p < P; p++) {
        let s = 0;
        for (let j = 0; j < Ct; j++) s += V[i * Ct + j] * a[j * P + p];
        seed[i * P + p] -= weight * 2 * s;
      }
    }
    return seed;
  });
}
