/**
 * How errors leave the server, over HTTP (Apollo's formatError) and over WebSocket alike: API
 * errors with their code, the lower layers' plain errors mapped by src/errors.ts, graphql-js's
 * own limits in the wording of ours, and anything else as INTERNAL_SERVER_ERROR.
 */
import { GraphQLError, GraphQLFormattedError } from 'graphql';
import { toApiError } from '../errors';
import { asLimitError } from './query-limits';

/** Errors the API did not mean to raise keep their message but lose any stack or internals. */
export function formatError(formatted: GraphQLFormattedError, error?: unknown): GraphQLFormattedError {
  const { stacktrace: _stack, exception: _exception, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
  // Limits raised during validation keep their own code (Apollo marks every validation error
  // GRAPHQL_VALIDATION_FAILED); the lower layers' plain errors get theirs.
  const original = error instanceof GraphQLError ? error.originalError : error;
  const mapped = toApiError(original);
  if (mapped) {
    const { http: _http, ...own } = mapped.extensions as Record<string, unknown>;
    return { ...formatted, message: mapped.message, extensions: { ...extensions, ...own } };
  }
  const limit = asLimitError(formatted.message);
  if (limit) return { ...formatted, ...limit };
  return { ...formatted, extensions: { ...extensions, code: extensions.code ?? 'INTERNAL_SERVER_ERROR' } };
}
