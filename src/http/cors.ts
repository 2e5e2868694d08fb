/**
 * Cross-origin use (CORS_ORIGINS): pages of the allowed origins may call /graphql, draw /img
 * results into a canvas (`<img crossorigin>`), fetch /tensors and /embed.js, and open the
 * subscription WebSocket. No cookies are used (API keys travel in a header), so credentials are
 * never allowed. The server's own origin is always allowed.
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from '../config';
import { API_KEY_HEADER } from './api-keys';

/** Whether a request with this Origin (none: not a cross-origin browser request) may be answered for it. */
export function originAllowed(config: Pick<Config, 'corsOrigins'>, req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  if (config.corsOrigins === '*' || config.corsOrigins.includes(origin)) return true;
  try {
    return new URL(origin).host === req.headers.host; // same origin
  } catch {
    return false;
  }
}

/**
 * Express middleware for every route: an allowed origin gets Access-Control-Allow-Origin (and
 * its preflights 204 with the methods and headers the API uses); another gets no CORS headers,
 * so browsers refuse its pages the response, and its preflights 403.
 */
export function cors(config: Pick<Config, 'corsOrigins'>): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    res.vary('Origin');
    if (origin && originAllowed(config, req)) {
      res.set('Access-Control-Allow-Origin', config.corsOrigins === '*' ? '*' : origin);
      res.set('Access-Control-Expose-Headers', 'Retry-After, Server-Timing, ETag');
      if (preflight) {
        res.set({
          'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
          'Access-Control-Allow-Headers': `Content-Type, Apollo-Require-Preflight, X-Apollo-Operation-Name, ${API_KEY_HEADER}`,
          'Access-Control-Max-Age': '600',
        });
        res.status(204).end();
        return;
      }
    } else if (origin && preflight) {
      res.status(403).end();
      return;
    }
    next();
  };
}
