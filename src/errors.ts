import { GraphQLError } from 'graphql';

/** The stable error codes of the API (`extensions.code`). */
export type ErrorCode =
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'UNSUPPORTED_MODEL'
  | 'QUERY_TOO_COMPLEX'
  | 'OVERLOADED'
  | 'INFERENCE_FAILED';

export class ApiError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extra } });
  }
}

export const notFound = (message: string, extra?: Record<string, unknown>) => new ApiError('NOT_FOUND', message, extra);
export const badInput = (message: string, extra?: Record<string, unknown>) => new ApiError('BAD_USER_INPUT', message, extra);
export const unsupported = (message: string, extra?: Record<string, unknown>) =>
  new ApiError('UNSUPPORTED_MODEL', message, extra);

/** "a, b, c" or "a, b, c … (40 more)": for messages that say what exists. */
export function listSome(names: readonly string[], max = 12): string {
  if (names.length === 0) return '(none)';
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} … (${names.length - max} more)` : shown;
}
