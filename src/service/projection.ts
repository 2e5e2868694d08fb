/**
 * Projections as the API asks for them: one request (method, seed, LRN mode, position) with its
 * defaults and checks, for every field that projects (Filter.projection, TopActivation.projection,
 * Occlusion.projection, the top-k grid).
 */
import { seedShape } from '../compiler/units';
import { badInput } from '../errors';
import { SourceImage } from '../inference';
import type { Layer, Model, Unit } from '../model';
import { LayerKind } from '../onnx/ops';
import type { LrnMode, Method, SeedMode } from '../vocabulary';
import type { Scope } from './scope';
import { Position, Projection, projectionBox } from './views';

/** What a client asks of a projection; anything left out takes PROJECTION_DEFAULTS (lrn: defaultLrn). */
export interface ProjectionRequest {
  method?: Method;
  seed?: SeedMode;
  lrn?: LrnMode;
  /** The unit of the map to send down, for seed POSITION only. */
  position?: Position;
}

/** The defaults of a projection, and of how its picture is drawn (Projection.imageUrl's crop). */
export const PROJECTION_DEFAULTS = { method: 'DECONVNET', seed: 'MAX', crop: false } as const satisfies { method: Method; seed: SeedMode; crop: boolean };

/** How a method crosses LRN unless asked: the true gradient for the plain gradient, as identity otherwise. */
export function defaultLrn(method: Method): LrnMode {
  return method === 'SALIENCY' ? 'GRADIENT' : 'IDENTITY';
}

/** A request with its defaults, checked against the unit's map: BAD_USER_INPUT for a position that does not fit. */
export function checkProjection(
  { layer }: Unit,
  request: ProjectionRequest,
): Required<Omit<ProjectionRequest, 'position'>> & Pick<ProjectionRequest, 'position'> {
  const { method = PROJECTION_DEFAULTS.method, seed = PROJECTION_DEFAULTS.seed } = request;
  const position = checkPosition(layer, request.position, seed === 'POSITION', 'seed');
  return { method, seed, lrn: request.lrn ?? defaultLrn(method), position };
}

/**
 * A `position` argument checked against the layer's map: required when `used` (the `argument`
 * is POSITION), refused otherwise; BAD_USER_INPUT when it does not fit. A copy of it, or undefined.
 */
export function checkPosition(layer: Layer, position: Position | undefined, used: boolean, argument: string): Position | undefined {
  const [, Ht, Wt] = seedShape(layer.outputShape);
  if (!used) {
    if (position) throw badInput(`\`position\` is only used with ${argument}: POSITION`, { argument: 'position' });
    return undefined;
  }
  if (!position) throw badInput(`${argument} POSITION needs a \`position: {y, x}\``, { argument: 'position' });
  if (!Number.isInteger(position.y) || !Number.isInteger(position.x) || position.y < 0 || position.x < 0 || position.y >= Ht || position.x >= Wt) {
    throw badInput(`position (${position.y}, ${position.x}) is outside the ${Ht}×${Wt} map of layer "${layer.name}"`, { argument: 'position' });
  }
  return { y: position.y, x: position.x };
}

/**
 * The projection of one unit's activation on one image (once per request, through the scope's
 * DataLoader); `batch`: in runs of up to that many items instead of MAX_BATCH (the atlas's).
 */
export async function projectUnit(scope: Scope, unit: Unit, image: SourceImage, request: ProjectionRequest, batch?: number): Promise<Projection> {
  const { method, seed, lrn, position } = checkProjection(unit, request);
  const { model, layer, index } = unit;
  const result = await scope.projections.load({ model, layer, image, options: { method, lrn, channel: index, seed, position, batch } });
  return { unit, image, method, seed, lrn, result, inputBox: projectionBox(unit, result.position, seed) };
}

/**
 * The Conv layer whose projections a ReLU layer's are, where the ReLU is positive: the Conv it
 * reads directly, if any. Where a ReLU unit's activation at its maximum is positive, that maximum
 * is the Conv unit's (at the same, first, position, with the same value), and every method passes a
 * positive seed back through the ReLU unchanged (DECONVNET: relu of the signal; GUIDED_BACKPROP and
 * SALIENCY: also only where the input, the Conv's value there, is positive): the ReLU unit's
 * projection on that image, seed MAX or POSITION, is the Conv unit's, value for value.
 */
export function projectsAsConv(model: Model, layer: Layer): Layer | undefined {
  if (layer.kind !== LayerKind.RELU) return undefined;
  const input = layer.node.proto.input[0];
  return model.layers.find((l) => l.kind === LayerKind.CONV && l.tensor === input);
}
