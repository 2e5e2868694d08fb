/**
 * How a layer's activation is seen as units: channels × positions. Feature maps [C, H, W] are
 * C channels over H×W positions; dense outputs [F] are F channels at one position; token
 * layers [T, D] (a ViT's residual stream) are D channels over T positions, one per token (a
 * [D, T, 1] grid): unit (token t, channel d).
 */
import { GraphBuilder } from './builder';

/** The unit grid [channels, height, width] of a per-image activation shape. */
export function seedShape(shape: number[]): [number, number, number] {
  if (shape.length === 3) return shape as [number, number, number];
  if (shape.length === 2) return [shape[1], shape[0], 1];
  if (shape.length === 1) return [shape[0], 1, 1];
  throw new Error(`activations of shape [${shape}] can't be seeded: expected [C, H, W], tokens [T, D] or [F]`);
}

export const isTokenShape = (shape: number[]): boolean => shape.length === 2;

/** Whether a per-image activation shape is a grid of units: [C, H, W], [T, D] or [F]. */
export const isUnitShape = (shape: number[]): boolean => shape.length >= 1 && shape.length <= 3;

/** An activation [N, …shape] in the graph as its unit grid [N, C, H, W]. */
export function asUnitGrid(b: GraphBuilder, tensor: string, shape: number[]): string {
  const grid = seedShape(shape);
  const channelsFirst = isTokenShape(shape) ? b.op('Transpose', [tensor], { perm: [0, 2, 1] }) : tensor;
  return b.reshape(channelsFirst, [-1, ...grid]);
}

/** asUnitGrid()'s inverse: a grid [N, C, H, W] as an activation [N, …shape]. */
export function fromUnitGrid(b: GraphBuilder, grid: string, shape: number[]): string {
  if (!isTokenShape(shape)) return b.reshape(grid, [-1, ...shape]);
  return b.op('Transpose', [b.reshape(grid, [-1, shape[1], shape[0]])], { perm: [0, 2, 1] });
}

/** One image's activation values in unit-grid order (token layers: [T, D] → [D, T]). */
export function unitGridValues(values: Float32Array, shape: number[]): Float32Array {
  if (!isTokenShape(shape)) return values;
  const [T, D] = shape;
  const out = new Float32Array(values.length);
  for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) out[d * T + t] = values[t * D + d];
  return out;
}
