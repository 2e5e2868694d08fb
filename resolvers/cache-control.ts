/**
 * Cache hints (Apollo's @cacheControl), declared in the code-first schema. Apollo's cache-control
 * plugin reads them from the schema's AST to compute each response's policy: the HTTP
 * `Cache-Control` header and what the whole-response cache (src/cache/apollo.ts) may keep.
 *
 * Entity and result types are cacheable for MAX_AGE; types that are parts of something else
 * (connections, edges, positions, boxes…) inherit their parent's maxAge. A field whose type has
 * no hint makes its response uncacheable (Apollo's default maxAge 0), which is the safe default
 * for types added later. Results are content-addressed (model file, preprocessing, image bytes),
 * but the names clients query by (a model's name) can point at another file after a restart:
 * hence an hour, not forever. The response cache's key includes the served models' hashes.
 */
import { DirectiveLocation, GraphQLBoolean, GraphQLDirective, GraphQLEnumType, GraphQLInt } from 'graphql';
import { Directive } from 'type-graphql';

/** Seconds a cacheable response may be reused. */
export const MAX_AGE = 3600;

export const CacheControlScope = new GraphQLEnumType({
  name: 'CacheControlScope',
  values: { PUBLIC: {}, PRIVATE: {} },
});

/** `directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION` */
export const cacheControlDirective = new GraphQLDirective({
  name: 'cacheControl',
  description: 'How long (seconds) and for whom a field or type may be cached (Apollo Server cache control).',
  locations: [DirectiveLocation.FIELD_DEFINITION, DirectiveLocation.OBJECT, DirectiveLocation.INTERFACE, DirectiveLocation.UNION],
  args: {
    maxAge: { type: GraphQLInt },
    scope: { type: CacheControlScope },
    inheritMaxAge: { type: GraphQLBoolean },
  },
});

/** Cacheable for `maxAge` seconds, by anyone. */
export const CacheFor = (maxAge = MAX_AGE) => Directive(`@cacheControl(maxAge: ${maxAge})`);
/** Takes the maxAge of the field that returns it (connections, edges, value objects). */
export const InheritMaxAge = () => Directive('@cacheControl(inheritMaxAge: true)');
/** Never cached (mutations). */
export const NoCache = () => Directive('@cacheControl(maxAge: 0)');
