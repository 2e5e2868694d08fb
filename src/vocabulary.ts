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

/** How Model.invariance moves the image (images/transform.ts), about its centre, as the model sees it (ZF Fig. 5). */
export const TRANSFORMS = {
  TRANSLATE: 'Vertical translation by `amount` input pixels (positive: down).',
  SCALE: 'Scaling by the factor `amount` (1: unchanged).',
  ROTATE: 'Rotation by `amount` degrees (positive: clockwise).',
} as const;
export type Transform = keyof typeof TRANSFORMS;

/** Where Model.invariance's class comes from (service/invariance.ts). */
export const TARGET_SOURCES = {
  ARGUMENT: 'The `targetClass` argument.',
  LABEL: "The image's label in its dataset (labels.json), found among the model's labels.",
  TOP1: 'The most probable class of the untransformed image (uploads, and images whose label is not one of the model’s).',
} as const;
export type TargetSource = keyof typeof TARGET_SOURCES;

/** How Layer.units orders a layer's units (service/selectivity.ts). */
export const UNIT_ORDERS = {
  INDEX: 'By channel index.',
  SELECTIVITY:
    'Most class-selective first: the largest share of its top-k images with its most frequent label, then the lowest label entropy, then the index. Needs `dataset` and a built index.',
} as const;
export type UnitOrder = keyof typeof UNIT_ORDERS;

/** What a feature visualization maximises (service/feature-visualization.ts). */
export const OBJECTIVES = {
  CHANNEL_MEAN: "The channel's mean over its map (Lucid's `objectives.channel`).",
  POSITION: "The unit at `position` of the map (Lucid's `objectives.neuron`).",
} as const;
export type Objective = keyof typeof OBJECTIVES;
