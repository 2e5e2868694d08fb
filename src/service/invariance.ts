/**
 * Invariance (ZF §4.2, Fig. 5): how the features of two layers and the true class's probability
 * change as an image is translated, scaled or rotated. The image is transformed as the model sees
 * it (its 8-bit pixels at the input size, images/transform.ts), then normalised as any input.
 * Per step: the Euclidean distance between the layer's whole activation (all units at all
 * positions, as one vector) on the transformed image and on the original, and the probability of
 * the true class.
 */
import { badInput } from '../errors';
import { modelPixels, normalisePixels } from '../images/preprocess';
import { transformPixels } from '../images/transform';
import { SourceImage } from '../inference';
import type { Layer, Model } from '../model';
import type { TargetSource, Transform } from '../vocabulary';
import { classLabel } from './occlusion';
import { findLayer } from './lookup';
import type { Scope } from './scope';
import type { Services } from './services';
import { plotUrl } from './views';

export interface InvarianceRequest {
  transform: Transform;
  /** Number of amounts, evenly spaced from the identity (step 0) to `to`. */
  steps: number;
  /** The last step's amount; default INVARIANCE_DEFAULTS.to[transform] of the input size. */
  to?: number;
  /** Default: the first and the last ReLU (ZF: layers 1 and 7). */
  layers?: string[];
  /** Default: the image's dataset label if the model has it, else the original's top-1. */
  targetClass?: number;
}

export const INVARIANCE_DEFAULTS = {
  steps: 9,
  /** ZF Fig. 5 moves a 224-pixel image by up to 60 pixels (about a quarter), scales it up to 1.8×, rotates it all the way round. */
  to: { TRANSLATE: (height: number) => Math.round(height / 4), SCALE: () => 1.8, ROTATE: () => 360 },
  /** The most layers one study follows (ZF: two). */
  maxLayers: 4,
} as const;

export interface InvarianceStep {
  amount: number;
  /** Per layer, in the order of `layers`. */
  distances: number[];
  /** distances divided by the norm of the original's activation (0 when that is 0). */
  relativeDistances: number[];
  probability: number;
}

export interface Invariance {
  model: Model;
  image: SourceImage;
  transform: Transform;
  layers: Layer[];
  targetClass: number;
  targetSource: TargetSource;
  steps: InvarianceStep[];
}

/** The identity of each transform. */
const IDENTITY: Record<Transform, number> = { TRANSLATE: 0, SCALE: 1, ROTATE: 0 };

/** Checked, with defaults; BAD_USER_INPUT or NOT_FOUND for what does not fit the model. */
export async function invariance(scope: Scope, model: Model, image: SourceImage, request: InvarianceRequest): Promise<Invariance> {
  const { services } = scope;
  const { transform } = request;
  const [, H] = model.inputShape;
  const limit = services.config.maxInvarianceSteps;
  if (!Number.isInteger(request.steps) || request.steps < 2 || request.steps > limit) {
    throw badInput(`steps must be between 2 and ${limit} (MAX_INVARIANCE_STEPS), got ${request.steps}`, { argument: 'steps' });
  }
  const to = request.to ?? INVARIANCE_DEFAULTS.to[transform](H);
  const bounds: Record<Transform, [number, number, string]> = {
    TRANSLATE: [-H, H, `−${H} to ${H} pixels (the input's height)`],
    SCALE: [0.05, 20, '0.05 to 20'],
    ROTATE: [-720, 720, '−720 to 720 degrees'],
  };
  const [lo, hi, says] = bounds[transform];
  if (!Number.isFinite(to) || to < lo || to > hi) throw badInput(`to must be ${says} for ${transform}, got ${to}`, { argument: 'to' });
  const layers = (request.layers ?? defaultLayers(model)).map((name) => findLayer(model, name));
  if (layers.length < 1 || layers.length > INVARIANCE_DEFAULTS.maxLayers) {
    throw badInput(`give 1 to ${INVARIANCE_DEFAULTS.maxLayers} layers (ZF Fig. 5 follows two), got ${layers.length}`, { argument: 'layers' });
  }
  const classes = services.inference.classCount(model);
  if (request.targetClass !== undefined && (!Number.isInteger(request.targetClass) || request.targetClass < 0 || request.targetClass >= classes)) {
    throw badInput(`targetClass ${request.targetClass} is out of range: the model has classes 0 to ${classes - 1}`, { argument: 'targetClass' });
  }

  const identity = IDENTITY[transform];
  const amounts = Array.from({ length: request.steps }, (_, i) => identity + ((to - identity) * i) / (request.steps - 1));
  const p = model.preprocessing;
  const pixels = await modelPixels(image.bytes, p, services.config);
  const shape = [p.height, p.width, p.channels === 'GRAY' ? 1 : 3];
  const prepared = await services.inference.prepare(model, image); // for its key: the transformed inputs are named after it
  const runs = await Promise.all(
    amounts.map((amount) => {
      const data = normalisePixels(transformPixels(pixels, shape, transform, amount, p.pad ?? 0), p);
      return services.inference.forwardLayers(model, { key: `${prepared.key}/${transform}/${amount}`, data }, layers, true);
    }),
  );
  const [original] = runs;
  const label = image.dataset && image.name ? services.datasets.datasets.get(image.dataset)?.byName.get(image.name)?.label : undefined;
  const { targetClass, targetSource } = target(model, request.targetClass, original.probabilities!, label);
  const norms = original.activations.map((a) => Math.sqrt(a.reduce((s, v) => s + v * v, 0)));
  const steps = runs.map((run, i) => {
    const distances = run.activations.map((a, l) => {
      const o = original.activations[l];
      let s = 0;
      for (let j = 0; j < a.length; j++) s += (a[j] - o[j]) ** 2;
      return Math.sqrt(s);
    });
    return {
      amount: amounts[i],
      distances,
      relativeDistances: distances.map((d, l) => (norms[l] > 0 ? d / norms[l] : 0)),
      probability: run.probabilities![targetClass],
    };
  });
  return { model, image, transform, layers, targetClass, targetSource, steps };
}

/** The first and the last ReLU (ZF Fig. 5: layers 1 and 7), else the first and the last layer. */
function defaultLayers(model: Model): string[] {
  const relus = model.layers.filter((l) => l.kind === 'RELU');
  const from = relus.length ? relus : model.layers;
  return [...new Set([from[0].name, from[from.length - 1].name])];
}

function target(
  model: Model,
  asked: number | undefined,
  probabilities: Float32Array,
  label: string | undefined,
): { targetClass: number; targetSource: TargetSource } {
  if (asked !== undefined) return { targetClass: asked, targetSource: 'ARGUMENT' };
  const labelled = label === undefined ? -1 : model.labels.indexOf(label);
  if (labelled >= 0) return { targetClass: labelled, targetSource: 'LABEL' };
  let top = 0;
  for (let k = 1; k < probabilities.length; k++) if (probabilities[k] > probabilities[top]) top = k;
  return { targetClass: top, targetSource: 'TOP1' };
}

export const targetLabel = (inv: Invariance) => classLabel(inv.model, inv.targetClass);

const X_LABELS: Record<Transform, string> = { TRANSLATE: 'vertical translation (pixels)', SCALE: 'scale factor', ROTATE: 'rotation (degrees)' };

/** ZF Fig. 5 as one PNG: per layer the distance from the original's features, then the class's probability, over the amounts. */
export function invariancePlotUrl(services: Services, inv: Invariance): Promise<string> {
  const x = inv.steps.map((s) => s.amount);
  const panels = [
    ...inv.layers.map((l, i) => ({ title: `${l.name}: distance`, series: [{ name: l.name, values: inv.steps.map((s) => s.distances[i]) }] })),
    { title: `p(${targetLabel(inv)})`, yMax: 1, series: [{ name: 'probability', values: inv.steps.map((s) => s.probability) }] },
  ];
  const parts = { transform: inv.transform, amounts: x, layers: inv.layers.map((l) => l.name), target: inv.targetClass };
  return plotUrl(services, { name: 'invariance-plot', model: inv.model, image: inv.image, parts }, { x, xLabel: X_LABELS[inv.transform], panels });
}
