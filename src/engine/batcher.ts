/**
 * Merges work submitted by concurrent requests into one call: it waits up to `windowMs` after
 * the first item (or until `maxBatch` items are queued), then runs them together. While a batch
 * runs, new items queue up and go together in the next one, so under load batches fill up.
 * When `idle()` says nothing is running, the wait is skipped (the batch starts after the
 * current turn of the event loop, which still merges the items of one request): a lone query
 * pays no window, and under load the window applies as before.
 *
 * A full batch does not wait for the one running: it starts at once, so that its feeds are
 * made and it waits at the runtime while the running one ends, and the runtime goes from one
 * to the next while the main thread handles the first's results (an atlas's runs waited
 * ~100 ms each for that). At most two batches are under way; a part batch waits for both.
 *
 * Backpressure: every batcher of an engine shares one QueueBudget, the number of items waiting
 * (not yet running) across all of them. An item submitted for a request (while the request's
 * AbortSignal is current: runWithSignal) that would go over it is refused at once with
 * OverloadedError instead of piling up. Work submitted outside any request (index jobs, work run
 * `detached` because several requests share it) is counted but never refused: it is bounded by
 * its own chunking. Cancellation: a request's item leaves the queue as soon as its signal fires
 * (client gone, time limit), and a batch never includes an item whose signal has fired. Work
 * already running is not interrupted.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface BatcherOptions {
  maxBatch: number;
  windowMs: number;
  /** Shared bound on waiting items; none: unbounded. */
  budget?: QueueBudget;
  /** True when the runtime has nothing to do: the batch may start without waiting. */
  idle?: () => boolean;
  /** Called with the number of items dropped because their request was cancelled. */
  onDrop?: (count: number) => void;
}

/** The queue is full: try again later. */
export class OverloadedError extends Error {
  constructor(
    readonly queued: number,
    readonly limit: number,
    readonly retryAfterMs: number,
  ) {
    super(`the server is at capacity (${queued} inference items waiting, limit ${limit}, MAX_QUEUED_ITEMS): retry in ${retryAfterMs} ms`);
    this.name = 'OverloadedError';
  }
}

export type CancelReason = 'timeout' | 'client-gone' | 'shutdown';

/** The request the work was for has been cancelled, or the engine is closing. */
export class CancelledError extends Error {
  constructor(
    readonly reason: CancelReason,
    message: string,
  ) {
    super(message);
    this.name = 'CancelledError';
  }
}

// ---- the current request's signal ----------------------------------------------------------

const scope = new AsyncLocalStorage<AbortSignal>();

/** Runs `fn` (and everything it starts) with `signal` as the current request's signal. */
export function runWithSignal<T>(signal: AbortSignal, fn: () => T): T {
  return scope.run(signal, fn);
}

/** Runs `fn` outside any request: for work shared by several requests, which none may cancel. */
export function detached<T>(fn: () => T): T {
  return scope.exit(fn);
}

/** The signal of the request on whose behalf the caller runs, if any. */
export function currentSignal(): AbortSignal | undefined {
  return scope.getStore();
}

/** The error an aborted signal stands for. */
export function cancelledBy(signal: AbortSignal): CancelledError {
  const reason: unknown = signal.reason;
  return reason instanceof CancelledError ? reason : new CancelledError('client-gone', 'the request was cancelled');
}

// ---- the shared bound ----------------------------------------------------------------------

export class QueueBudget {
  /** Items waiting in all batchers that share this budget. */
  queued = 0;
  /** Items refused because the budget was spent. */
  refused = 0;

  constructor(
    readonly limit: number,
    /** How long until the queue has room again, in ms: the retry hint. */
    private readonly retryAfterMs: () => number,
  ) {}

  /** Throws OverloadedError if `count` more items would go over the limit. */
  check(count = 1): void {
    if (this.queued + count > this.limit) {
      this.refused += count;
      throw new OverloadedError(this.queued, this.limit, this.retryAfterMs());
    }
  }
}

/** A running batch and the next, made and waiting for the runtime. */
const MAX_UNDER_WAY = 2;

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: { cancel(): void } | null = null;
  /** The batches under way: running, or made and waiting for the runtime. */
  private readonly underWay = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly options: BatcherOptions,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  submit(item: I): Promise<O> {
    const signal = currentSignal();
    if (this.closed) return Promise.reject(new CancelledError('shutdown', 'the server is shutting down'));
    if (signal?.aborted) {
      this.options.onDrop?.(1);
      return Promise.reject(cancelledBy(signal));
    }
    try {
      if (signal) this.options.budget?.check(1);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<O>((resolve, reject) => {
      const pending: Pending<I, O> = { item, resolve, reject, signal };
      if (signal) {
        pending.onAbort = () => this.cancel(pending);
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
      this.queue.push(pending);
      if (this.options.budget) this.options.budget.queued++;
      if (this.queue.length >= this.options.maxBatch) this.start();
      else if (!this.timer && this.underWay.size === 0) this.timer = this.schedule();
    });
  }

  /** The batch's start: after the window, or after this turn of the event loop when idle. */
  private schedule(): { cancel(): void } {
    if (this.options.idle?.()) {
      const immediate = setImmediate(() => this.start());
      return { cancel: () => clearImmediate(immediate) };
    }
    const timeout = setTimeout(() => this.start(), this.options.windowMs);
    return { cancel: () => clearTimeout(timeout) };
  }

  /** Takes a cancelled item out of the queue (if it is still there) and rejects it. */
  private cancel(pending: Pending<I, O>): void {
    const i = this.queue.indexOf(pending);
    if (i < 0) return;
    this.queue.splice(i, 1);
    if (this.options.budget) this.options.budget.queued--;
    this.options.onDrop?.(1);
    pending.reject(cancelledBy(pending.signal!));
    if (this.queue.length === 0 && this.timer) {
      this.timer.cancel();
      this.timer = null;
    }
  }

  /** The next batch: up to maxBatch items off the queue, without those whose request is gone. */
  private take(): Pending<I, O>[] {
    const taken = this.queue.splice(0, this.options.maxBatch);
    if (this.options.budget) this.options.budget.queued -= taken.length;
    const live: Pending<I, O>[] = [];
    for (const p of taken) {
      if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
      if (p.signal?.aborted) {
        this.options.onDrop?.(1);
        p.reject(cancelledBy(p.signal));
      } else live.push(p);
    }
    return live;
  }

  /** Starts batches off the queue: any batch when none is under way, full ones while one is. */
  private start(): void {
    this.timer?.cancel();
    this.timer = null;
    const full = () => this.queue.length >= this.options.maxBatch;
    while (this.queue.length && (this.underWay.size === 0 || (this.underWay.size < MAX_UNDER_WAY && full()))) {
      const batch = this.take();
      if (batch.length === 0) continue;
      const run = this.run(batch).finally(() => {
        this.underWay.delete(run);
        // What queued meanwhile goes next, without a window: it has waited for this batch.
        if (this.underWay.size === 0 || full()) this.start();
      });
      this.underWay.add(run);
    }
  }

  private async run(batch: Pending<I, O>[]): Promise<void> {
    try {
      const results = await this.runBatch(batch.map((p) => p.item));
      batch.forEach((p, i) => p.resolve(results[i]));
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }

  /**
   * Refuses new work, fails what is still waiting (CancelledError 'shutdown') and resolves when
   * the batch now running, if any, has finished: after this the sessions can be released.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = null;
    const waiting = this.queue.splice(0);
    if (this.options.budget) this.options.budget.queued -= waiting.length;
    for (const p of waiting) {
      if (p.onAbort) p.signal!.removeEventListener('abort', p.onAbort);
      p.reject(new CancelledError('shutdown', 'the server is shutting down'));
    }
    await Promise.all(this.underWay);
  }
}
