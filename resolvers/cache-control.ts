/**
 * Cache hints (Apollo's @cacheControl), declared in the code-first schema. Apollo's cache-control
 * plugin reads them from the schema's AST; a response's policy is the least maxAge over its
 * fields. It sets the HTTP `Cache-Control` header and decides whether, and for how long, the
 * whole-response cache (src/cache/apollo.ts) keeps the response.
 *
 * The rule: an answer may be cached only if it is a function of the query and of the content
 * of the files the query names (content-addressed); whatever changes over time never is.
 * - CacheFor: a model, layer, filter or image, and the results computed from them (predictions,
 *   weights, activations, feature maps, projections, occlusion). A name is not content, but it
 *   changes meaning only at a restart: the response cache's key holds the content of every
 *   served model and dataset (servedFingerprint), so it never answers from other files; HTTP
 *   caches see only the query and may keep such an answer for MAX_AGE after a restart that puts
 *   another file under the same name: hence an hour, not forever.
 * - NoCache: anything that changes while the query stays the same: jobs and their progress,
 *   anything read from an index (topActivations, topActivationsGrid: which index is finished,
 *   INDEX_NOT_BUILT), and what a folder holds (models, snapshots, modelErrors, datasets, a
 *   dataset and its list of images: a file added before a restart must show at once, behind
 *   HTTP caches too). Mutations are NoCache too.
 * - InheritMaxAge: parts of something else (connections, edges, positions, boxes…) take their
 *   parent's maxAge.
 * A type without a hint makes its response uncacheable (Apollo's default maxAge is 0), which
 * is the safe default for types added later. A field of an interface type takes the
 * interface's hint, never its object's. So Node is NoCache, and node(id) applies the hint of the
 * object it returns (hintFromRuntimeType).
 */
import { DirectiveLocation, GraphQLBoolean, GraphQLDirective, GraphQLEnumType, GraphQLInt, GraphQLObjectType, GraphQLResolveInfo, isObjectType } from 'graphql';
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
/** Never cached: what changes over time, and mutations. */
export const NoCache = () => Directive('@cacheControl(maxAge: 0)');

type CacheHint = { maxAge?: number; scope?: 'PUBLIC' | 'PRIVATE' };
/** What Apollo adds to `info` (Apollo Server's @apollo/cache-control-types); absent over WebSocket. */
type CacheControlInfo = { cacheControl?: { setCacheHint(hint: CacheHint): void; cacheHintFromType(type: GraphQLObjectType): CacheHint | undefined } };

/**
 * Gives a field of an interface type the hint of the object type it resolved to (Apollo only
 * reads the interface's). Call it in the resolver, before returning: Apollo records the field's
 * hint once the resolver's promise settles, before the runtime type is resolved.
 */
export function hintFromRuntimeType(info: GraphQLResolveInfo, typeName: string): void {
  const { cacheControl } = info as unknown as CacheControlInfo;
  const type = info.schema.getType(typeName);
  if (cacheControl && isObjectType(type)) cacheControl.setCacheHint(cacheControl.cacheHintFromType(type) ?? {});
}
