/**
 * The words a projection or an occlusion is asked in, one vocabulary from the GraphQL enums
 * (resolvers/enums.ts registers these tables, their descriptions included) down to the compiler
 * and the engine. Each table maps a value to what it means.
 */

/** The top-down rule at ReLUs (compiler/elementwise-rules.ts reluLike). */
export const METHODS = {
  DECONVNET: 'Zeiler & Fergus: relu of the signal from above, ignoring the forward activation.',
  GUIDED_BACKPROP: 'Springenberg et al.: relu of the signal, and only where the forward input was positive.',
  SALIENCY: 'Simonyan et al.: the plain gradient.',
} as const;
export type Method = keyof typeof METHODS;

/** Which activations of the filter's map are sent down (engine/projections.ts). */
export const SEED_MODES = {
  MAX: 'The strongest (first in raster order on ties).',
  POSITION: 'The one at `position`.',
  FULL_MAP: 'The whole map.',
} as const;
export type SeedMode = keyof typeof SEED_MODES;

/** How local response normalisation is crossed going down (compiler/norm-rules.ts). */
export const LRN_MODES = {
  IDENTITY: 'As identity (the paper is silent; the common choice).',
  GRADIENT: 'Its true gradient.',
} as const;
export type LrnMode = keyof typeof LRN_MODES;

/** What the occluder is filled with (images/occlusion.ts occlusionFill). */
export const FILL_MODES = {
  MEAN: 'The dataset mean: preprocessed value 0 (ZF’s grey square).',
  ZERO: 'A black pixel: (0 · scale − mean) / std per channel.',
  VALUE: '`fillValue`, a preprocessed value, in every channel.',
} as const;
export type FillMode = keyof typeof FILL_MODES;
