/** Predictions and occlusion sensitivity (ZF §4.2, Fig. 7) as the API asks for them: defaults and checks. */
import { badInput } from '../errors';
import { defaultOcclusionLayer, occlusionGrid } from '../engine/occlusion';
import { classColor, occlusionFill } from '../images/occlusion';
import { SourceImage } from '../inference';
import type { Layer, Model } from '../model';
import type { FillMode } from '../vocabulary';
import { findLayer } from './lookup';
import type { Scope } from './scope';
import { Occlusion, OcclusionMap } from './views';

/** A class's label: the sidecar's, or "class i". */
export const classLabel = (model: Model, k: number): string => model.labels[k] ?? `class ${k}`;

/** The `top` most probable classes of an image, most probable first (ties: lower index first). */
export async function predict({ services }: Scope, model: Model, image: SourceImage, top: number) {
  if (!Number.isInteger(top) || top < 1) throw badInput(`top must be at least 1, got ${top}`, { argument: 'top' });
  const probabilities = await services.inference.predict(model, image);
  const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  return order.slice(0, top).map((k) => ({ classIndex: k, label: classLabel(model, k), probability: probabilities[k] }));
}

/** What a client asks of occlusion; anything left out takes its default. */
export interface OcclusionRequest {
  /** Side of the square in input pixels; default: min(H, W) / 7, rounded. */
  size?: number;
  /** Pixels between positions; default: size / 4, rounded. */
  stride?: number;
  fill: FillMode;
  /** The preprocessed value, for fill VALUE only. */
  fillValue?: number;
  /** Default: the last convolution with spatial output (engine/occlusion.ts defaultOcclusionLayer). */
  layer?: string;
  /** Default: the top class of the unoccluded image. */
  targetClass?: number;
}

/** The layer whose strongest feature map occlusion follows: as named, or the default; it must output maps [C, H, W] or units [F]. */
function occlusionLayer(model: Model, name: string | undefined): Layer {
  const layer = name != null ? findLayer(model, name) : defaultOcclusionLayer(model.graph, model.layers);
  if (!layer) throw badInput(`model "${model.name}" has no layer with spatial feature maps: give a \`layer\``, { argument: 'layer' });
  const shape = layer.outputShape;
  if (!(shape.length === 3 || shape.length === 1) || shape.some((d) => !(d > 0))) {
    throw badInput(`layer "${layer.name}" outputs [${shape}], not feature maps [C, H, W] or units [F]`, { argument: 'layer' });
  }
  return layer;
}

/** Occlusion sensitivity of an image, checked (BAD_USER_INPUT), computed once and cached per parameters. */
export async function occlusion({ services }: Scope, model: Model, image: SourceImage, request: OcclusionRequest): Promise<Occlusion> {
  const { fill, fillValue, targetClass } = request;
  if ((fill === 'VALUE') !== (fillValue != null)) {
    throw badInput(fill === 'VALUE' ? 'fill: VALUE needs a `fillValue`' : '`fillValue` is only used with fill: VALUE', { argument: 'fillValue' });
  }
  const layer = occlusionLayer(model, request.layer);
  const [, H, W] = model.inputShape;
  const size = request.size ?? Math.max(1, Math.round(Math.min(H, W) / 7));
  const stride = request.stride ?? Math.max(1, Math.round(size / 4));
  for (const [name, v] of [
    ['size', size],
    ['stride', stride],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > Math.min(H, W)) {
      throw badInput(`${name} ${v} is out of range: give 1 to ${Math.min(H, W)} pixels (the model's input is ${H}×${W})`, { argument: name });
    }
  }
  const grid = occlusionGrid(H, W, size, stride);
  const positions = grid.width * grid.height;
  const limit = services.config.maxOcclusionPositions;
  if (positions > limit) {
    throw badInput(
      `size ${size} and stride ${stride} make ${grid.width}×${grid.height} = ${positions} occluder positions, over the limit of ${limit} (MAX_OCCLUSION_POSITIONS): use a larger stride`,
      { argument: 'stride', positions, limit },
    );
  }
  const classes = services.inference.classCount(model);
  if (targetClass !== undefined && (!Number.isInteger(targetClass) || targetClass < 0 || targetClass >= classes)) {
    throw badInput(`targetClass ${targetClass} is out of range: the model has classes 0 to ${classes - 1}`, { argument: 'targetClass' });
  }
  const fillValues = occlusionFill(model.preprocessing, fill, fillValue);
  const result = await services.inference.occlusion(model, layer, image, { size, stride, fill: fillValues, targetClass });
  return { model, layer, image, result, size, stride, fill, fillValues };
}

/** The three maps of Fig. 7: (b) the strongest map's total activation, (d) the target's probability, (e) the top class. */
export function occlusionMaps(o: Occlusion): Record<'activation' | 'probability' | 'topClass', OcclusionMap> {
  const map = (name: OcclusionMap['name'], values: Float32Array, range: OcclusionMap['range'] | null): OcclusionMap => {
    let min = Infinity;
    let max = -Infinity;
    for (const v of values) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    return { occlusion: o, name, values, min, max, range: range ?? { min, max } };
  };
  return {
    activation: map('activation', o.result.activation, null),
    probability: map('probability', o.result.probability, { min: 0, max: 1 }),
    topClass: map('top-class', o.result.topClass, 'classes'),
  };
}

/** The classes of the top-class map, most positions first, with their colour there and their number of positions. */
export function topClasses(o: Occlusion): { classIndex: number; label: string; color: string; positions: number }[] {
  const counts = new Map<number, number>();
  for (const k of o.result.topClass) counts.set(k, (counts.get(k) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .map(([k, positions]) => ({ classIndex: k, label: classLabel(o.model, k), color: classColor(k), positions }));
}
