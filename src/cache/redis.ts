/**
 * The Redis tier (REDIS_URL), through Keyv and @keyv/redis: what one server process computes,
 * the others read. Values are the same checksummed entries as on disk (base64, since Keyv stores
 * strings), under `convscope::<sha256 of the key>`. Redis bounds its own memory (maxmemory with
 * an LRU policy); entries also expire after CACHE_REDIS_TTL_S. A Redis that is down or slow
 * makes misses and counted errors, never failed requests: every call is cut off after
 * REDIS_TIMEOUT_MS, and after one failure a circuit breaker stops asking Redis until a
 * background probe finds it answering again.
 */
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import { log } from '../log';
import { DiskTier } from './disk';
import { CorruptEntryError, decodeEntry, encodeEntry } from './entry';

export interface RedisTierOptions {
  url: string;
  /** Default time to live of an entry in ms (0: none). */
  ttlMs: number;
  /** Longest wait for any Redis call, in ms. */
  timeoutMs: number;
  namespace?: string;
}

class TimeoutError extends Error {}

/** How long the breaker waits between probes of a Redis that failed, ms. */
export const REDIS_PROBE_MS = 1000;

export type BreakerState = 'closed' | 'open';

export class RedisTier {
  readonly name = 'redis';
  private readonly keyv: Keyv<string>;
  private readonly adapter: KeyvRedis<string>;
  corrupt = 0;
  errors = 0;
  /**
   * The circuit breaker: `closed` while Redis answers; `open` from its first failure (a timeout,
   * a refused connection) until a background probe gets an answer again. While open, every call
   * is a miss at once, so a Redis that is down or hung costs each request nothing, not a timeout
   * per lookup.
   */
  breaker: BreakerState = 'closed';
  /** Times the breaker opened. */
  trips = 0;
  /** Calls not made because the breaker was open. */
  skipped = 0;
  private probe?: NodeJS.Timeout;
  private lastErrorLog = 0;

  constructor(private readonly options: RedisTierOptions) {
    this.adapter = new KeyvRedis<string>(options.url, { throwOnConnectError: true, throwOnErrors: true, connectionTimeout: options.timeoutMs });
    this.keyv = new Keyv<string>({ store: this.adapter, namespace: options.namespace ?? 'convscope', throwOnErrors: true });
    this.keyv.on('error', () => undefined); // reported through the rejected call
    this.adapter.on('error', () => undefined);
  }

  private failed(e: unknown): void {
    this.errors++;
    const now = Date.now();
    if (now - this.lastErrorLog > 10_000) {
      this.lastErrorLog = now;
      log.warn({ err: (e as Error)?.message ?? String(e), url: redact(this.options.url) }, 'redis cache tier unavailable; going on without it');
    }
    if (this.breaker === 'closed') {
      this.breaker = 'open';
      this.trips++;
      this.scheduleProbe();
    }
  }

  /** While open: asks Redis for a PING every REDIS_PROBE_MS (in the background) and closes on an answer. */
  private scheduleProbe(): void {
    this.probe = setTimeout(async () => {
      try {
        await this.withTimeout(async () => (await this.adapter.getClient()).ping());
        this.breaker = 'closed';
        log.info({ url: redact(this.options.url) }, 'redis cache tier is back');
      } catch {
        this.scheduleProbe();
      }
    }, REDIS_PROBE_MS);
    this.probe.unref();
  }

  private async withTimeout<T>(what: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        what(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TimeoutError(`redis did not answer within ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `what` through the breaker and the timeout; `fallback` when the breaker is open or the call fails. */
  private async call<T>(what: () => Promise<T>, fallback: T): Promise<T> {
    if (this.breaker === 'open') {
      this.skipped++;
      return fallback;
    }
    try {
      return await this.withTimeout(what);
    } catch (e) {
      this.failed(e);
      return fallback;
    }
  }

  /** Connects now, so that a wrong REDIS_URL shows at start-up (as a warning: the tier degrades). */
  async open(): Promise<void> {
    await this.call(() => this.adapter.getClient(), undefined);
  }

  async get(key: string): Promise<Buffer | undefined> {
    const text = await this.call(() => this.keyv.get(DiskTier.idOf(key)), undefined);
    if (typeof text !== 'string') return undefined;
    try {
      return decodeEntry(key, Buffer.from(text, 'base64'));
    } catch (e) {
      if (!(e instanceof CorruptEntryError)) throw e;
      this.corrupt++;
      await this.delete(key);
      return undefined;
    }
  }

  async has(key: string): Promise<boolean> {
    return this.call(() => this.keyv.has(DiskTier.idOf(key)), false);
  }

  /** Whether the entry was written (false: Redis is down or the breaker open). */
  async set(key: string, payload: Buffer, ttlMs?: number): Promise<boolean> {
    const ttl = ttlMs ?? (this.options.ttlMs || undefined);
    return this.call(() => this.keyv.set(DiskTier.idOf(key), Buffer.concat(encodeEntry(key, payload)).toString('base64'), ttl), false);
  }

  async delete(key: string): Promise<void> {
    await this.call(() => this.keyv.delete(DiskTier.idOf(key)), false);
  }

  /** The Redis server's used_memory (all of its keys, not only ours), or undefined when unreachable. */
  async usedMemory(): Promise<number | undefined> {
    const text = await this.call(async () => (await this.adapter.getClient()).info('memory'), '');
    const m = /^used_memory:(\d+)/m.exec(text);
    return m ? Number(m[1]) : undefined;
  }

  async close(): Promise<void> {
    clearTimeout(this.probe);
    try {
      await this.withTimeout(() => this.adapter.disconnect());
    } catch {
      await this.adapter.disconnect(true).catch(() => undefined);
    }
  }
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
