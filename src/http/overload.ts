/**
 * Overload over HTTP: at most MAX_INFLIGHT_REQUESTS requests in flight (admission), and the HTTP
 * status and Retry-After of the inference queue's OVERLOADED errors (the queue bound,
 * MAX_QUEUED_ITEMS, lives in engine/batcher.ts).
 */
import type { ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

export interface Admission extends RequestHandler {
  /** /graphql requests, and blobs being made from a recipe (blobs.ts), handled now. */
  readonly inFlight: number;
  /** Requests refused so far. */
  readonly refused: number;
}

/**
 * Express middleware (before the body parser): at most `limit` /graphql requests (and blobs made
 * from a recipe, http/blobs.ts) are handled at once; one more is refused at once with 503, OVERLOADED, `retryAfterMs` and Retry-After,
 * before its body is read. This bounds all the work of requests, including what comes before
 * the inference queue (body parsing, image decoding) and what onnxruntime-node's runs, which
 * hold the event loop, make wait: without it, requests over capacity wait, unbounded, for the
 * event loop instead of failing fast. The retry hint is the recent mean time of a request.
 */
export function admission(limit: number): Admission {
  let inFlight = 0;
  let refused = 0;
  let meanMs = 100;
  const handler = ((req: Request, res: Response, next: NextFunction) => {
    if (inFlight >= limit) {
      refused++;
      const retryAfterMs = Math.min(30_000, Math.max(100, Math.round(meanMs)));
      res.set('Retry-After', String(Math.ceil(retryAfterMs / 1000)));
      // The body is not read: the connection is closed rather than drained (measured: draining
      // refused bodies on kept connections cost a third of the answered throughput).
      if (!req.complete) res.set('Connection', 'close');
      res.status(503).json({
        errors: [
          {
            message: `the server is at capacity (${inFlight} requests in flight, limit ${limit}, MAX_INFLIGHT_REQUESTS): retry in ${retryAfterMs} ms`,
            extensions: { code: 'OVERLOADED', retryAfterMs, limit },
          },
        ],
      });
      return;
    }
    inFlight++;
    const started = performance.now();
    res.once('close', () => {
      inFlight--;
      meanMs = 0.9 * meanMs + 0.1 * (performance.now() - started);
    });
    next();
  }) as Admission;
  Object.defineProperty(handler, 'inFlight', { get: () => inFlight });
  Object.defineProperty(handler, 'refused', { get: () => refused });
  return handler;
}

/**
 * Apollo plugin: a response carrying OVERLOADED errors gets `Retry-After` (seconds, from the
 * largest `retryAfterMs`); if it also has no data, HTTP 503. A response with no data that
 * failed on TIMEOUT gets HTTP 504. Partial results stay 200, as GraphQL over HTTP expects.
 * Every response says how long the server spent on it: `Server-Timing: graphql;dur=<ms>`.
 */
export function overloadPlugin<C extends object>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse({ response }) {
          response.http.headers.set('server-timing', `graphql;dur=${(performance.now() - started).toFixed(1)}`);
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
