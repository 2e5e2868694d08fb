/**
 * Optional API keys (API_KEYS), sent in the X-API-Key header (over WebSocket: the connection
 * parameter `x-api-key`). With keys set, mutations need one; with API_KEYS_FOR_READS every
 * operation does. Each key has its own rate limit (API_KEY_RATE_LIMIT requests a minute):
 * over it, OVERLOADED with HTTP 429 and Retry-After.
 *
 * Keys are compared in constant time (as sha256 digests, so lengths leak nothing either), are
 * never logged, and no error names a key, sent or known.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { GraphQLError, OperationTypeNode } from 'graphql';
import type { Config } from '../config';

export const API_KEY_HEADER = 'X-API-Key';

type KeyConfig = Pick<Config, 'apiKeys' | 'apiKeysForReads' | 'apiKeyRateLimit'>;

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest();

export interface ApiKeys {
  /** Whether keys are in use at all. */
  readonly enabled: boolean;
  /** The index of the key `sent` is (compared with every key, in constant time), or -1. */
  find(sent: string | undefined): number;
  /** The error refusing an operation of this type, sent with or without a valid key; undefined if it may run. */
  refusal(operation: OperationTypeNode, keyed: boolean): GraphQLError | undefined;
  /** Takes one request from key number `index`'s rate: OVERLOADED (with retryAfterMs) when it is over it. */
  overLimit(index: number): GraphQLError | undefined;
  /** Express middleware before /graphql's body parser: a wrong key (or, with API_KEYS_FOR_READS, none) is refused; res.locals.apiKey = whether a valid key came. */
  http: RequestHandler;
  /** Apollo plugin: mutations (and, with API_KEYS_FOR_READS, every operation) need a key (`apiKey` in the context). */
  plugin<C extends { apiKey?: boolean }>(): ApolloServerPlugin<C>;
}

const error = (message: string, extensions: Record<string, unknown>) => new GraphQLError(message, { extensions });
const MISSING = `this operation needs an API key, sent in the ${API_KEY_HEADER} header`;
const UNKNOWN = `the ${API_KEY_HEADER} header does not carry a valid API key`;

export function apiKeys(config: KeyConfig): ApiKeys {
  const known = config.apiKeys.map(digest);
  // Per key, a token bucket holding one minute's requests.
  const rate = config.apiKeyRateLimit;
  const buckets = known.map(() => ({ tokens: rate, at: performance.now() }));

  const find = (sent: string | undefined): number => {
    if (sent === undefined) return -1;
    const d = digest(sent);
    let found = -1;
    for (let i = 0; i < known.length; i++) if (timingSafeEqual(d, known[i]) && found < 0) found = i; // compares with every key
    return found;
  };
  const refusal = (operation: OperationTypeNode, keyed: boolean) =>
    known.length && !keyed && (config.apiKeysForReads || operation === OperationTypeNode.MUTATION)
      ? error(MISSING, { code: 'UNAUTHENTICATED', http: { status: 401 } })
      : undefined;
  const overLimit = (index: number): GraphQLError | undefined => {
    if (rate <= 0) return undefined;
    const bucket = buckets[index];
    const now = performance.now();
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) * rate) / 60_000);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    const retryAfterMs = Math.ceil(((1 - bucket.tokens) * 60_000) / rate);
    return error(`this API key is over its rate limit of ${rate} requests a minute (API_KEY_RATE_LIMIT): retry in ${retryAfterMs} ms`, {
      code: 'OVERLOADED',
      retryAfterMs,
    });
  };

  const refuse = (res: Response, status: number, e: GraphQLError) => {
    const { http: _http, ...extensions } = e.extensions;
    res.status(status).json({ errors: [{ message: e.message, extensions }] });
  };
  const http: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    res.locals.apiKey = false;
    if (!known.length || req.method === 'OPTIONS') return next();
    const sent = req.get(API_KEY_HEADER);
    if (sent === undefined) {
      // Reads need a key too: refused before the body is read. Otherwise the operation decides (plugin).
      const refused = refusal(OperationTypeNode.QUERY, false);
      return refused ? refuse(res, 401, refused) : next();
    }
    const index = find(sent);
    if (index < 0) return refuse(res, 401, error(UNKNOWN, { code: 'UNAUTHENTICATED' }));
    const over = overLimit(index);
    if (over) {
      res.set('Retry-After', String(Math.ceil(Number(over.extensions.retryAfterMs) / 1000)));
      return refuse(res, 429, over);
    }
    res.locals.apiKey = true;
    next();
  };

  return {
    enabled: known.length > 0,
    find,
    refusal,
    overLimit,
    http,
    plugin<C extends { apiKey?: boolean }>(): ApolloServerPlugin<C> {
      return {
        async requestDidStart() {
          return {
            async didResolveOperation({ operation, contextValue }) {
              const refused = operation && refusal(operation.operation, contextValue.apiKey === true);
              if (refused) throw refused;
            },
          };
        },
      };
    },
  };
}
