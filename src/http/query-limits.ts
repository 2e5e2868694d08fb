/**
 * Limits on the query document, so that one request cannot take the server down: cost, depth,
 * aliases, directives and tokens, over HTTP and over WebSocket alike. The limits are set in
 * src/config.ts; see there for defaults.
 *
 * - Cost: graphql-query-complexity over the operation with its variables, reading the
 *   `complexity` of type-graphql's `@Field`/`@FieldResolver` (resolvers/complexity.ts); every
 *   other field costs 1. Checked after validation (it needs the variables: `first` multiplies a
 *   connection), before anything runs. Over the limit: QUERY_TOO_COMPLEX, HTTP 400, with the
 *   computed `cost` and `maxCost` in the message and in `extensions`.
 * - Depth, aliases, directives: graphql-armor's Apollo protections, reporting through the
 *   validation context (so Apollo answers 400, not 500), each as QUERY_TOO_COMPLEX with `limit`.
 * - Tokens: graphql-js's own parser limit (`parseOptions.maxTokens`; armor's token plugin throws
 *   from a hook, which Apollo answers with 500), graphql-js's validation work budget
 *   ("Validation aborted.") and its introspection depth rule: all reported as
 *   QUERY_TOO_COMPLEX, HTTP 400 (see asLimitError).
 * - GraphQL over WebSocket (graphql-ws): wsLimits applies the same document limits, and the
 *   operation's signal (signals.ts).
 */
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { ApolloServerPlugin, GraphQLRequestContext } from '@apollo/server';
import {
  DocumentNode,
  GraphQLError,
  GraphQLSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isUnionType,
  ValidationContext,
  ValidationRule,
} from 'graphql';
import { ComplexityEstimator, fieldExtensionsEstimator, getComplexity, simpleEstimator } from 'graphql-query-complexity';
import type { Config } from '../config';
import { runWithSignal } from '../engine/batcher';
import { ApiError } from '../errors';

type QueryLimits = Pick<Config, 'maxQueryCost' | 'maxQueryDepth' | 'maxAliases' | 'maxDirectives' | 'maxQueryTokens'>;

const HTTP_400 = { http: { status: 400 } };

/** An error raised while the document is checked: QUERY_TOO_COMPLEX, answered with HTTP 400. */
export function tooComplex(message: string, extra: Record<string, unknown>): ApiError {
  return new ApiError('QUERY_TOO_COMPLEX', message, { ...extra, ...HTTP_400 });
}

/**
 * Introspection is priced by the size of its answer: each field 0.1 (it is cheap: no I/O), and
 * a list field times its average length in this schema. GraphiQL's introspection query (3 400
 * values here) costs ~4 400, while `types { fields { type { ofType { fields { … } } } } }`,
 * whose answer grows geometrically with its depth (introspection is exempt from the depth
 * limit), soon goes over the limit.
 */
function introspectionEstimator(schema: GraphQLSchema): ComplexityEstimator {
  const types = Object.values(schema.getTypeMap());
  const avg = (counts: number[]) => Math.max(1, Math.ceil(counts.reduce((a, b) => a + b, 0) / Math.max(1, counts.length)));
  const withFields = types.filter((t) => isObjectType(t) || isInterfaceType(t)) as import('graphql').GraphQLObjectType[];
  const fields = withFields.flatMap((t) => Object.values(t.getFields()));
  const directives = schema.getDirectives();
  const lengths = new Map<string, number>([
    ['__Schema.types', types.length],
    ['__Schema.directives', directives.length],
    ['__Type.fields', avg(withFields.map((t) => Object.keys(t.getFields()).length))],
    ['__Type.interfaces', avg(withFields.map((t) => t.getInterfaces().length))],
    [
      '__Type.possibleTypes',
      avg(types.filter((t) => isInterfaceType(t) || isUnionType(t)).map((t) => schema.getPossibleTypes(t as import('graphql').GraphQLAbstractType).length)),
    ],
    ['__Type.enumValues', avg(types.filter(isEnumType).map((t) => t.getValues().length))],
    ['__Type.inputFields', avg(types.filter(isInputObjectType).map((t) => Object.keys(t.getFields()).length))],
    ['__Field.args', avg(fields.map((f) => f.args.length))],
    ['__Directive.args', avg(directives.map((d) => d.args.length))],
  ]);
  const weight = 0.1;
  return ({ type, field, childComplexity }) => {
    if (!type.name.startsWith('__') && field.name !== '__schema' && field.name !== '__type') return undefined;
    const n = lengths.get(`${type.name}.${field.name}`);
    return n === undefined ? weight + childComplexity : weight + n * childComplexity;
  };
}

const estimatorsBySchema = new WeakMap<GraphQLSchema, ComplexityEstimator[]>();

/** The cost of an operation as the limit counts it (exported for tests and tools). */
export function queryCost(schema: GraphQLSchema, request: { document: DocumentNode; variables?: Record<string, unknown>; operationName?: string }): number {
  let estimators = estimatorsBySchema.get(schema);
  if (!estimators) {
    estimators = [introspectionEstimator(schema), fieldExtensionsEstimator(), simpleEstimator({ defaultComplexity: 1 })];
    estimatorsBySchema.set(schema, estimators);
  }
  const cost = getComplexity({
    schema,
    query: request.document,
    variables: request.variables ?? {},
    operationName: request.operationName,
    estimators,
  });
  return Math.ceil(cost - 1e-9);
}

/** Apollo plugin: rejects operations that cost more than `maxCost` before they run. */
export function costLimitPlugin<C extends object>(maxCost: number): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation(rc: GraphQLRequestContext<C>) {
          if (!rc.operation) return; // no such operation: Apollo says so itself
          let cost: number;
          try {
            cost = queryCost(rc.schema, {
              document: rc.document!,
              variables: rc.request.variables ?? {},
              operationName: rc.request.operationName ?? undefined,
            });
          } catch (e) {
            const message = (e as Error).message;
            if (/maximum allowed number of nodes/.test(message)) {
              throw tooComplex(`the query expands to too many fields to price (fragments spread too often); simplify it`, { maxCost });
            }
            // Arguments that cannot be read (a null for a non-null argument, …) would fail when
            // run; they fail here, so that no part of an unpriced query runs.
            throw new ApiError('BAD_USER_INPUT', message, HTTP_400);
          }
          if (cost > maxCost) {
            throw tooComplex(
              `query cost ${cost} is over the limit of ${maxCost} (MAX_QUERY_COST): ask for fewer items (\`first\`) or fewer inference fields (projection, activation, featureMaps …) per request`,
              { cost, maxCost },
            );
          }
        },
      };
    },
  };
}

/** graphql-armor's reports, as QUERY_TOO_COMPLEX errors with the limit that was passed. */
function reject(what: string, env: string, limit: number) {
  return (ctx: ValidationContext | null, error: GraphQLError) => {
    const found = /found (\d+)/.exec(error.message)?.[1];
    const message = `${what} over the limit of ${limit} (${env})${found ? `: found ${found}` : ''}`;
    const err = tooComplex(message, { limit, ...(found ? { found: Number(found) } : {}) });
    if (ctx) ctx.reportError(err);
    else throw err;
  };
}

/** Validation rules, plugins and parse options for ApolloServer's options. */
export function queryLimits<C extends object>(
  limits: QueryLimits,
): {
  validationRules: ValidationRule[];
  plugins: ApolloServerPlugin<C>[];
  parseOptions: { maxTokens: number };
} {
  const armor = new ApolloArmor({
    // Introspection is on, so masking "Did you mean …" hides nothing; the hints help.
    blockFieldSuggestion: { enabled: false },
    // Priced by costLimitPlugin, which reads the resolvers' complexity and the variables.
    costLimit: { enabled: false },
    maxDepth: {
      n: limits.maxQueryDepth,
      flattenFragments: true,
      ignoreIntrospection: true,
      propagateOnRejection: false,
      onReject: [reject('query depth', 'MAX_QUERY_DEPTH', limits.maxQueryDepth)],
    },
    maxAliases: {
      n: limits.maxAliases,
      propagateOnRejection: false,
      onReject: [reject('number of aliases', 'MAX_ALIASES', limits.maxAliases)],
    },
    maxDirectives: {
      n: limits.maxDirectives,
      propagateOnRejection: false,
      onReject: [reject('number of directives', 'MAX_DIRECTIVES', limits.maxDirectives)],
    },
    // By graphql-js's parser instead (parseOptions below): the same count, answered with 400.
    maxTokens: { enabled: false },
  });
  const protection = armor.protect();
  return {
    validationRules: protection.validationRules as ValidationRule[],
    plugins: [...(protection.plugins as ApolloServerPlugin<C>[]), costLimitPlugin<C>(limits.maxQueryCost)],
    // Counted while parsing, before any validation: a huge document costs little to refuse.
    parseOptions: { maxTokens: limits.maxQueryTokens },
  };
}

/**
 * graphql-js's own limits, which Apollo reports as parse or validation failures (HTTP 400), in
 * the code and wording of the other limits; undefined for any other message.
 */
export function asLimitError(message: string): { message: string; extensions: Record<string, unknown> } | undefined {
  const tokens = /Document contains more th(?:an|at) (\d+) tokens/.exec(message)?.[1];
  if (tokens) {
    return {
      message: `query over the limit of ${tokens} tokens (MAX_QUERY_TOKENS)`,
      extensions: { code: 'QUERY_TOO_COMPLEX', limit: Number(tokens) },
    };
  }
  if (message === 'Maximum introspection depth exceeded') {
    return {
      message: 'introspection nested too deep (fields, interfaces, possibleTypes or inputFields over 3 levels): ask for less at a time',
      extensions: { code: 'QUERY_TOO_COMPLEX' },
    };
  }
  if (message === 'Validation aborted.') {
    return {
      message: 'the query is too large to validate (too many fields to compare with each other); split it or use fewer fields',
      extensions: { code: 'QUERY_TOO_COMPLEX' },
    };
  }
  return undefined;
}

// ---- the same limits for GraphQL over WebSocket (graphql-ws) --------------------------------

type WsExecutionArgs = import('graphql').ExecutionArgs;
type WsResult = ReturnType<typeof import('graphql').execute> | ReturnType<typeof import('graphql').subscribe>;

/**
 * Options for graphql-ws's useServer that apply the limits of /graphql to operations sent over a
 * WebSocket (graphql-ws runs queries and mutations too, not only subscriptions): the token limit
 * when parsing, depth/aliases/directives when validating, the cost before running, and the
 * context's `signal` as the engine's current signal while running (so the queue bound and
 * cancellation apply). Put `signal: socketSignal(ctx.extra.socket)` in the context.
 */
export function wsLimits(config: QueryLimits): {
  parse: typeof import('graphql').parse;
  validate: typeof import('graphql').validate;
  execute: (args: WsExecutionArgs) => WsResult;
  subscribe: (args: WsExecutionArgs) => WsResult;
} {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const graphql = require('graphql') as typeof import('graphql');
  const limits = queryLimits(config);
  const guarded =
    (run: (args: WsExecutionArgs) => WsResult) =>
    (args: WsExecutionArgs): WsResult => {
      // No such operation: execution says so without running anything.
      if (!graphql.getOperationAST(args.document, args.operationName)) return run(args);
      let cost: number;
      try {
        cost = queryCost(args.schema, {
          document: args.document,
          variables: (args.variableValues ?? {}) as Record<string, unknown>,
          operationName: args.operationName ?? undefined,
        });
      } catch (e) {
        return { errors: [new ApiError('BAD_USER_INPUT', (e as Error).message)] };
      }
      if (cost > config.maxQueryCost) {
        const message = `query cost ${cost} is over the limit of ${config.maxQueryCost} (MAX_QUERY_COST)`;
        return { errors: [new ApiError('QUERY_TOO_COMPLEX', message, { cost, maxCost: config.maxQueryCost })] };
      }
      const signal = (args.contextValue as { signal?: AbortSignal } | undefined)?.signal;
      return signal ? runWithSignal(signal, () => run(args)) : run(args);
    };
  return {
    parse: ((source: string | import('graphql').Source) => graphql.parse(source, limits.parseOptions)) as typeof graphql.parse,
    validate: ((schema: GraphQLSchema, document: DocumentNode) =>
      graphql.validate(schema, document, [...graphql.specifiedRules, ...limits.validationRules])) as typeof graphql.validate,
    execute: guarded(graphql.execute),
    subscribe: guarded(graphql.subscribe as (args: WsExecutionArgs) => WsResult),
  };
}
