/**
 * What keeps one request from taking the server down: limits on the query document (cost, depth,
 * aliases, directives, tokens), a time limit and a cancel signal per request, and the HTTP side
 * of overload (503 + Retry-After). The limits are set in src/config.ts; see there for defaults.
 *
 * - Cost: graphql-query-complexity over the operation with its variables, reading the
 *   `complexity` of type-graphql's `@Field`/`@FieldResolver` (resolvers/complexity.ts); every
 *   other field costs 1. Checked after validation (it needs the variables: `first` multiplies a
 *   connection), before anything runs. Over the limit: QUERY_TOO_COMPLEX, HTTP 400, with the
 *   computed `cost` and `maxCost` in the message and in `extensions`.
 * - Depth, aliases, directives: graphql-armor's Apollo protections, reporting through the
 *   validation context (so Apollo answers 400, not 500), each as QUERY_TOO_COMPLEX with `limit`.
 * - Tokens: graphql-js's own parser limit (`parseOptions.maxTokens`; armor's token plugin throws
 *   from a hook, which Apollo answers with 500), and graphql-js's validation work budget
 *   ("Validation aborted."): both reported as QUERY_TOO_COMPLEX, HTTP 400 (see asLimitError).
 * - Time and cancellation: each /graphql request gets an AbortSignal that fires when the client
 *   goes away (the response closes before it was sent) or after REQUEST_TIMEOUT_MS. It is in the
 *   GraphQL context (`ctx.signal`) and, through an AsyncLocalStorage, visible to the engine's
 *   micro-batchers, which drop the request's work that has not started yet.
 */
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { ApolloServerPlugin, GraphQLRequestContext } from '@apollo/server';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
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
import { CancelledError, runWithSignal } from '../engine/batcher';
import { ApiError } from '../errors';
import { log } from '../log';

type QueryLimits = Pick<Config, 'maxQueryCost' | 'maxQueryDepth' | 'maxAliases' | 'maxDirectives' | 'maxQueryTokens'>;

const HTTP_400 = { http: { status: 400 } };

/** An error raised while the document is checked: QUERY_TOO_COMPLEX, answered with HTTP 400. */
export function tooComplex(message: string, extra: Record<string, unknown>): ApiError {
  return new ApiError('QUERY_TOO_COMPLEX', message, { ...extra, ...HTTP_400 });
}

/**
 * Introspection's list fields, priced by how long they are on average in this schema: a query's
 * cost then follows the size of its answer, so GraphiQL's introspection query passes while
 * `types { fields { type { fields { type { fields … } } } } }`, whose answer grows
 * geometrically with its depth (and introspection is exempt from the depth limit), does not.
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
    ['__Type.possibleTypes', avg(types.filter((t) => isInterfaceType(t) || isUnionType(t)).map((t) => schema.getPossibleTypes(t as import('graphql').GraphQLAbstractType).length))],
    ['__Type.enumValues', avg(types.filter(isEnumType).map((t) => t.getValues().length))],
    ['__Type.inputFields', avg(types.filter(isInputObjectType).map((t) => Object.keys(t.getFields()).length))],
    ['__Field.args', avg(fields.map((f) => f.args.length))],
    ['__Directive.args', avg(directives.map((d) => d.args.length))],
  ]);
  return ({ type, field, childComplexity }) => {
    const n = lengths.get(`${type.name}.${field.name}`);
    return n === undefined ? undefined : 1 + n * childComplexity;
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
  return getComplexity({
    schema,
    query: request.document,
    variables: request.variables ?? {},
    operationName: request.operationName,
    estimators,
  });
}

/** Apollo plugin: rejects operations that cost more than `maxCost` before they run. */
export function costLimitPlugin<C extends object>(maxCost: number): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation(rc: GraphQLRequestContext<C>) {
          let cost: number;
          try {
            cost = queryCost(rc.schema, { document: rc.document!, variables: rc.request.variables ?? {}, operationName: rc.request.operationName ?? undefined });
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
export function queryLimits<C extends object>(limits: QueryLimits): {
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
  if (message === 'Validation aborted.') {
    return {
      message: 'the query is too large to validate (too many fields to compare with each other); split it or use fewer fields',
      extensions: { code: 'QUERY_TOO_COMPLEX' },
    };
  }
  return undefined;
}

// ---- per-request signal --------------------------------------------------------------------

/**
 * Express middleware (after the body parser): gives the request an AbortSignal (res.locals.signal)
 * and runs the rest of its handling with that signal as the engine's current one.
 *
 * "Client gone" is the response closing before it was fully written: in Node ≥ 16 the request's
 * own 'close' fires as soon as its body has been read, so it cannot be used for this.
 */
export function requestSignal(timeoutMs: number): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction) => {
    const controller = new AbortController();
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            controller.abort(new CancelledError('timeout', `the request took longer than the limit of ${timeoutMs} ms (REQUEST_TIMEOUT_MS)`));
          }, timeoutMs)
        : undefined;
    timer?.unref();
    res.once('close', () => {
      if (timer) clearTimeout(timer);
      if (!res.writableFinished && !controller.signal.aborted) {
        controller.abort(new CancelledError('client-gone', 'the client closed the connection'));
        log.debug('client went away; its queued work is dropped');
      }
    });
    res.locals.signal = controller.signal;
    runWithSignal(controller.signal, next);
  };
}

// ---- HTTP status and Retry-After of overload ------------------------------------------------

/**
 * Apollo plugin: a response carrying OVERLOADED errors gets `Retry-After` (seconds, from the
 * largest `retryAfterMs`); if it also has no data, HTTP 503. A response with no data that
 * failed on TIMEOUT gets HTTP 504. Partial results stay 200, as GraphQL over HTTP expects.
 */
export function overloadPlugin<C extends object>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          if (!errors?.length) return;
          const codes = errors.map((e) => e.extensions?.code);
          const noData = data === null || data === undefined;
          if (codes.includes('OVERLOADED')) {
            const retryMs = Math.max(0, ...errors.map((e) => Number(e.extensions?.retryAfterMs) || 0));
            response.http.headers.set('retry-after', String(Math.max(1, Math.ceil(retryMs / 1000))));
            if (noData) response.http.status = 503;
          } else if (noData && codes.includes('TIMEOUT')) {
            response.http.status = 504;
          }
        },
      };
    },
  };
}
