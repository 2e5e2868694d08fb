/**
 * Merges work submitted by concurrent requests into one call: it waits up to `windowMs` after
 * the first item (or until `maxBatch` items are queued), then runs them together. While a batch
 * runs, new items queue up and go together in the next one, so under load batches fill up.
 */
export interface BatcherOptions {
  maxBatch: number;
  windowMs: number;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export class MicroBatcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private draining = false;

  constructor(
    private readonly runBatch: (items: I[]) => Promise<O[]>,
    private readonly options: BatcherOptions,
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.options.maxBatch) void this.drain();
      else if (!this.timer && !this.draining) this.timer = setTimeout(() => void this.drain(), this.options.windowMs);
    });
  }

  private async drain(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.options.maxBatch);
        try {
          const results = await this.runBatch(batch.map((p) => p.item));
          batch.forEach((p, i) => p.resolve(results[i]));
        } catch (error) {
          for (const p of batch) p.reject(error);
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
