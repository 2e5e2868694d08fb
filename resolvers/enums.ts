/**
 * The GraphQL enums of the API's vocabulary: each is registered from its table in src/vocabulary.ts
 * (or src/index/store.ts), whose values and meanings it shows as they are.
 */
import { registerEnumType } from 'type-graphql';
import { JOB_KINDS } from '../src/index/jobs';
import { JOB_STATES } from '../src/index/store';
import { FILL_MODES, LRN_MODES, METHODS, OBJECTIVES, SEED_MODES, TARGET_SOURCES, TRANSFORMS, UNIT_ORDERS } from '../src/vocabulary';

/** A table of values and their meanings (or a list of values) as an enum object that type-graphql registers under `name`. */
function graphqlEnum<V extends string>(table: Record<V, string> | readonly V[], name: string, description?: string): { [K in V]: K } {
  const meanings: Record<string, string | undefined> = Array.isArray(table) ? Object.fromEntries(table.map((v) => [v, undefined])) : table;
  const values = Object.fromEntries(Object.keys(meanings).map((v) => [v, v])) as { [K in V]: K };
  const valuesConfig = Object.fromEntries(Object.entries(meanings).flatMap(([v, d]) => (d ? [[v, { description: d }]] : []))) as Partial<
    Record<V, { description: string }>
  >;
  registerEnumType(values, { name, description, valuesConfig });
  return values;
}

export const ProjectionMethod = graphqlEnum(METHODS, 'ProjectionMethod', 'The top-down rule at ReLUs.');
export const Seed = graphqlEnum(SEED_MODES, 'SeedMode', 'Which activations of the filter’s map are sent down.');
export const Lrn = graphqlEnum(LRN_MODES, 'LrnMode', 'How local response normalisation is crossed going down.');
export const OcclusionFill = graphqlEnum(
  FILL_MODES,
  'OcclusionFill',
  'What the occluder is filled with. It replaces every channel of the PREPROCESSED input tensor inside the square.',
);
export const FeatureObjective = graphqlEnum(OBJECTIVES, 'FeatureObjective', 'What a feature visualization maximises.');
export const JobStateEnum = graphqlEnum(JOB_STATES, 'JobState');
export const InvarianceTransform = graphqlEnum(
  TRANSFORMS,
  'InvarianceTransform',
  'How Model.invariance moves the image, about its centre, as the model sees it (ZF Fig. 5).',
);
export const TargetSourceEnum = graphqlEnum(TARGET_SOURCES, 'TargetSource', 'Where a class to follow comes from.');
export const UnitOrderEnum = graphqlEnum(UNIT_ORDERS, 'UnitOrder', "How Layer.units orders a layer's units.");
export const JobKindEnum = graphqlEnum(JOB_KINDS, 'JobKind', 'What a job makes.');
