/**
 * Query cost of fields (type-graphql's `complexity` option), read by the cost limit of
 * src/http/query-limits.ts (MAX_QUERY_COST). Every field costs 1 unless it says otherwise; a field's
 * cost includes its selection's (`childComplexity`).
 *
 * Inference is what a query can make expensive, so it is priced by what it runs: a projection is
 * a forward and a transposed pass (~2.5 forward passes, README: Benchmarks), an activation or the feature
 * maps one forward pass, a prediction one forward pass of the whole net. With the default limit
 * of 10 000 one query can ask for about 100 projections or 200 activations.
 */
import type { ComplexityEstimator } from 'graphql-query-complexity';

export const COST = {
  /** Filter.projection, and each projection elsewhere (top activations …). */
  projection: 100,
  /** Filter.activation. */
  activation: 50,
  /** Layer.featureMaps. */
  featureMaps: 50,
  /** Model.predict: a forward pass of the whole network. */
  predict: 50,
  /**
   * Model.occlusion: one forward pass per occluder position, up to MAX_OCCLUSION_POSITIONS (4096);
   * the default grid at 224×224 is 25×25 = 625. Flat (the grid depends on the model, which a
   * price cannot see): five per query under the default limit.
   */
  occlusion: 2000,
  /**
   * Model.compare: both models over up to MAX_COMPARE_IMAGES images (one forward pass each, kept
   * in the result cache per model, layer and images). Flat, like occlusion.
   */
  compare: 2000,
  /** Filter.featureVisualization, per step and image (a forward and a backward pass): 2048 for the default 512 steps. */
  featureVisualizationStep: 4,
  /** Rendering a PNG of weights (kernel, kernel grid). */
  render: 2,
} as const;

/** The items a connection will return: its `first`, or the default page of 20 (connection.ts). */
export function pageSize(args: { first?: number | null }, fallback = 20): number {
  const first = args.first ?? fallback;
  return Number.isFinite(first) ? Math.max(0, Math.floor(first)) : fallback;
}

/** A connection: its selection counted once per item it may return. */
export const perItem =
  (fallback = 20): ComplexityEstimator =>
  ({ args, childComplexity }) =>
    1 + pageSize(args, fallback) * childComplexity;

/** A field that runs `cost` of work, plus its selection. */
export const costs =
  (cost: number): ComplexityEstimator =>
  ({ childComplexity }) =>
    cost + childComplexity;
