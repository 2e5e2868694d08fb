/**
 * Time and cancellation: each /graphql request gets an AbortSignal that fires when the client
 * goes away (the response closes before it was sent) or after REQUEST_TIMEOUT_MS, and each
 * WebSocket one that fires when the socket closes. It is in the GraphQL context (`ctx.signal`)
 * and, through an AsyncLocalStorage, visible to the engine's micro-batchers, which drop the
 * request's work that has not started yet.
 */
import { setMaxListeners } from 'node:events';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { CancelledError, runWithSignal } from '../engine/batcher';
import { log } from '../log';

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
    setMaxListeners(0, controller.signal); // one listener per queued item of the request
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

const socketSignals = new WeakMap<object, AbortSignal>();

/** An AbortSignal that fires when the WebSocket closes (its operations' queued work is dropped). */
export function socketSignal(socket: { once(event: 'close', listener: () => void): unknown }): AbortSignal {
  let signal = socketSignals.get(socket);
  if (!signal) {
    const controller = new AbortController();
    setMaxListeners(0, controller.signal); // one listener per queued item of the request
    socket.once('close', () => controller.abort(new CancelledError('client-gone', 'the WebSocket closed')));
    signal = controller.signal;
    socketSignals.set(socket, signal);
  }
  return signal;
}
