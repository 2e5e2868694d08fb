import { GraphQLError } from 'graphql';
import { UnsupportedOpError } from './compiler/rules';
import { CancelledError, OverloadedError } from './engine/batcher';
import { ImageError } from './images/preprocess';

/**
 * The stable error codes of the API (`extensions.code`):
 * - NOT_FOUND, BAD_USER_INPUT: the request names something that does not exist, or is malformed.
 * - UNSUPPORTED_MODEL: the model has an op the compiler cannot go back through.
 * - QUERY_TOO_COMPLEX: over a query limit (cost, depth, aliases, directives, tokens); HTTP 400.
 * - OVERLOADED: the inference queue is full (MAX_QUEUED_ITEMS); `extensions.retryAfterMs`, and
 *   HTTP 503 + Retry-After when nothing else of the response could be answered. Also: too many
 *   requests in flight (MAX_INFLIGHT_REQUESTS), a key's rate (API_KEY_RATE_LIMIT), too many feature
 *   visualization jobs at once (FEATVIS_MAX_JOBS).
 * - TIMEOUT: the request ran past REQUEST_TIMEOUT_MS; its waiting work was dropped (HTTP 504 when no data).
 * - CANCELLED: the client went away, or the server is shutting down, before the work ran.
 * - INFERENCE_FAILED: the runtime failed on a graph.
 * - INDEX_NOT_BUILT: a field that reads a top-k index asked before one covering its layer was built.
 * - INCOMPATIBLE_MODELS: Model.compare of two models whose compared layer has different shapes.
 * Apollo's own codes (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, BAD_REQUEST) and
 * INTERNAL_SERVER_ERROR (a bug: the message is hidden and logged) can appear too.
 */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'UNSUPPORTED_MODEL'
  | 'QUERY_TOO_COMPLEX'
  | 'OVERLOADED'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'INFERENCE_FAILED'
  | 'INDEX_NOT_BUILT'
  | 'INCOMPATIBLE_MODELS';

export class ApiError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extra } });
  }
}

export const notFound = (message: string, extra?: Record<string, unknown>) => new ApiError('NOT_FOUND', message, extra);
export const badInput = (message: string, extra?: Record<string, unknown>) => new ApiError('BAD_USER_INPUT', message, extra);
export const unsupported = (message: string, extra?: Record<string, unknown>) => new ApiError('UNSUPPORTED_MODEL', message, extra);

/**
 * The one place where the lower layers' plain errors become API errors (the compiler, engine and
 * images know nothing of GraphQL): the engine's backpressure and cancellation, an op without a
 * top-down rule, an unusable image. An ApiError is itself; undefined for any other error.
 */
export function toApiError(e: unknown): ApiError | undefined {
  if (e instanceof ApiError) return e;
  if (e instanceof ImageError) return badInput(e.message);
  if (e instanceof UnsupportedOpError) return unsupported(e.message, { node: e.node.name, op: e.node.op });
  if (e instanceof OverloadedError) {
    return new ApiError('OVERLOADED', e.message, { retryAfterMs: e.retryAfterMs, queued: e.queued, limit: e.limit });
  }
  if (e instanceof CancelledError) {
    return e.reason === 'timeout' ? new ApiError('TIMEOUT', e.message) : new ApiError('CANCELLED', e.message, { reason: e.reason });
  }
  return undefined;
}

/** "a, b, c" or "a, b, c … (40 more)": for messages that say what exists. */
export function listSome(names: readonly string[], max = 12): string {
  if (names.length === 0) return '(none)';
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} … (${names.length - max} more)` : shown;
}
