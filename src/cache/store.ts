/**
 * The tiered, content-addressed result store: memory LRU → disk → Redis (when REDIS_URL is
 * set). Everything expensive goes through it: engine results (activations, projections), the
 * rendered blobs and the computation → blob index (blobs.ts), and Apollo's response and APQ
 * caches (apollo.ts).
 *
 * get() looks in each tier in turn and copies a hit into the tiers above it; set() writes
 * through to every tier. cached() adds single flight: concurrent callers of one missing key
 * share one computation. A tier that fails (a full disk, Redis down) counts an error and acts
 * as a miss: the cache never fails a request.
 */
import path from 'node:path';
import type { Config } from '../config';
import { log } from '../log';
import { DiskTier } from './disk';
import { Codec, CorruptEntryError } from './entry';
import { MemoryTier } from './memory';
import { RedisTier, RedisTierOptions } from './redis';

export type TierName = 'memory' | 'disk' | 'redis';
export const TIERS: TierName[] = ['memory', 'disk', 'redis'];

export interface TierStats {
  hits: number;
  misses: number;
  writes: number;
  errors: number;
}

export interface StoreOptions {
  /** Bytes of the memory tier (0: none). */
  memoryBytes: number;
  /** The disk tier's folder and bound (bytes 0: none). */
  disk?: { dir: string; bytes: number };
  redis?: RedisTierOptions;
}

export interface TierInfo {
  name: TierName;
  bytes: number | undefined;
  entries: number | undefined;
  limit: number | undefined;
  evictions: number;
  corrupt: number;
}

export class TieredStore {
  readonly memory?: MemoryTier;
  readonly disk?: DiskTier;
  readonly redis?: RedisTier;
  readonly stats: Record<TierName, TierStats> = {
    memory: { hits: 0, misses: 0, writes: 0, errors: 0 },
    disk: { hits: 0, misses: 0, writes: 0, errors: 0 },
    redis: { hits: 0, misses: 0, writes: 0, errors: 0 },
  };
  /** Computations run by cached() (misses in every tier). */
  computed = 0;
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Writes not yet finished; close() waits for them. */
  private readonly writing = new Set<Promise<void>>();

  constructor(options: StoreOptions) {
    if (options.memoryBytes > 0) this.memory = new MemoryTier(options.memoryBytes);
    if (options.disk && options.disk.bytes > 0) this.disk = new DiskTier(options.disk.dir, options.disk.bytes);
    if (options.redis) this.redis = new RedisTier(options.redis);
  }

  static async open(options: StoreOptions): Promise<TieredStore> {
    const store = new TieredStore(options);
    await store.disk?.open();
    await store.redis?.open();
    return store;
  }

  /** The tiers in use, fastest first. */
  get tiers(): TierName[] {
    return TIERS.filter((t) => this[t]);
  }

  async get(key: string): Promise<Buffer | undefined> {
    if (this.memory) {
      const hit = this.memory.get(key);
      if (hit) {
        this.stats.memory.hits++;
        return hit;
      }
      this.stats.memory.misses++;
    }
    if (this.disk) {
      let hit: Buffer | undefined;
      try {
        hit = await this.disk.get(key);
      } catch (e) {
        this.failed('disk', e);
      }
      if (hit) {
        this.stats.disk.hits++;
        this.memory?.set(key, hit);
        return hit;
      }
      this.stats.disk.misses++;
    }
    if (this.redis) {
      const hit = await this.redis.get(key);
      if (hit) {
        this.stats.redis.hits++;
        this.memory?.set(key, hit);
        if (this.disk) this.background(this.writeDisk(key, hit));
        return hit;
      }
      this.stats.redis.misses++;
    }
    return undefined;
  }

  /** Whether some tier holds `key` (the disk is asked its index, not read). */
  async has(key: string): Promise<boolean> {
    if (this.memory?.has(key) || this.disk?.has(key)) return true;
    return this.redis ? this.redis.has(key) : false;
  }

  /** Writes through to every tier; `ttlMs` limits the Redis copy (Keyv checks expiry on read everywhere). */
  async set(key: string, value: Buffer, ttlMs?: number): Promise<void> {
    if (this.memory) {
      this.memory.set(key, value);
      this.stats.memory.writes++;
    }
    const writes = Promise.all([
      this.disk ? this.writeDisk(key, value) : undefined,
      this.redis
        ? this.redis.set(key, value, ttlMs).then((written) => {
            if (written) this.stats.redis.writes++;
          })
        : undefined,
    ]).then(() => undefined);
    // Some callers don't wait (Apollo's response cache writes after answering): close() does.
    this.background(writes);
    await writes;
  }

  async delete(key: string): Promise<void> {
    this.memory?.delete(key);
    await Promise.all([this.disk?.delete(key).catch((e) => this.failed('disk', e)), this.redis?.delete(key)]);
  }

  /**
   * The value of `key`, computed by `compute` only when no tier has it, and then at most once
   * at a time in this process (single flight). An entry that fails to decode is deleted and
   * recomputed.
   */
  async cached<T>(key: string, codec: Codec<T>, compute: () => Promise<T>): Promise<T> {
    const fast = this.memory?.get(key);
    if (fast) {
      const value = this.decode(key, codec, fast);
      if (value !== undefined) {
        this.stats.memory.hits++;
        return value;
      }
    }
    for (let attempt = 1; ; attempt++) {
      const joined = this.inFlight.has(key);
      try {
        return await this.singleFlight(key, () => this.lookupOrCompute(key, codec, compute));
      } catch (e) {
        // The flight we joined was cancelled on behalf of the request that started it (its client
        // left, its time ran out): that is no answer for this caller, who computes for itself.
        if (!joined || !cancelled(e) || attempt >= 3) throw e;
      }
    }
  }

  private async lookupOrCompute<T>(key: string, codec: Codec<T>, compute: () => Promise<T>): Promise<T> {
    const bytes = await this.get(key);
    if (bytes) {
      const value = this.decode(key, codec, bytes);
      if (value !== undefined) return value;
    }
    this.computed++;
    const value = await compute();
    const written = this.set(key, codec.encode(value));
    // With a memory tier, the next caller finds the value there at once: disk and Redis are
    // written behind the answer (close() waits for them).
    if (this.memory) written.catch(() => undefined);
    else await written;
    return value;
  }

  /** Runs `work` for `key` unless a run for it is in flight in this process: then shares that one. */
  singleFlight<T>(key: string, work: () => Promise<T>): Promise<T> {
    const pending = this.inFlight.get(key) as Promise<T> | undefined;
    if (pending) return pending;
    const run = work();
    this.inFlight.set(key, run);
    run.finally(() => this.inFlight.delete(key)).catch(() => undefined);
    return run;
  }

  private decode<T>(key: string, codec: Codec<T>, bytes: Buffer): T | undefined {
    try {
      return codec.decode(bytes);
    } catch (e) {
      // A checksummed entry that does not decode was written by other code (another version).
      log.warn({ key, err: (e as Error).message, corrupt: e instanceof CorruptEntryError }, 'cache entry does not decode; recomputing');
      void this.delete(key);
      return undefined;
    }
  }

  private async writeDisk(key: string, value: Buffer): Promise<void> {
    try {
      await this.disk!.set(key, value);
      this.stats.disk.writes++;
    } catch (e) {
      this.failed('disk', e);
    }
  }

  private background(p: Promise<void>): void {
    this.writing.add(p);
    p.finally(() => this.writing.delete(p)).catch(() => undefined);
  }

  private failed(tier: TierName, e: unknown): void {
    this.stats[tier].errors++;
    log.warn({ tier, err: (e as Error)?.message ?? String(e) }, 'cache tier failed; treating as a miss');
  }

  info(): TierInfo[] {
    const out: TierInfo[] = [];
    if (this.memory) {
      const m = this.memory;
      out.push({ name: 'memory', bytes: m.bytes, entries: m.entries, limit: m.limit, evictions: m.evictions, corrupt: 0 });
    }
    if (this.disk) {
      const d = this.disk;
      out.push({ name: 'disk', bytes: d.bytes, entries: d.entries, limit: d.limit, evictions: d.evictions, corrupt: d.corrupt });
    }
    if (this.redis) out.push({ name: 'redis', bytes: undefined, entries: undefined, limit: undefined, evictions: 0, corrupt: this.redis.corrupt });
    return out;
  }

  /** Waits for background writes, then disconnects from Redis. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values(), ...this.writing]);
    await this.redis?.close();
  }
}

/** A cancellation of the request a computation ran for (engine/batcher.ts CancelledError, or its API form). */
function cancelled(e: unknown): boolean {
  const code = (e as { extensions?: { code?: unknown } })?.extensions?.code;
  return (e as Error)?.name === 'CancelledError' || code === 'TIMEOUT' || code === 'CANCELLED';
}

/** The store the configuration asks for: memory (CACHE_MEMORY_MB), CACHE_DIR/store (CACHE_DISK_MB), Redis (REDIS_URL). */
export function openStore(
  config: Pick<Config, 'cacheDir' | 'cacheMemoryBytes' | 'cacheDiskBytes' | 'redisUrl' | 'redisTtlS' | 'redisTimeoutMs'>,
): Promise<TieredStore> {
  return TieredStore.open({
    memoryBytes: config.cacheMemoryBytes,
    disk: { dir: path.join(config.cacheDir, 'store'), bytes: config.cacheDiskBytes },
    redis: config.redisUrl ? { url: config.redisUrl, ttlMs: config.redisTtlS * 1000, timeoutMs: config.redisTimeoutMs } : undefined,
  });
}
