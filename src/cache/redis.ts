/**
 * The Redis tier (REDIS_URL), through Keyv and @keyv/redis: what one server process computes,
 * the others read. Values are the same checksummed entries as on disk (base64, since Keyv stores
 * strings), under `convscope::<sha256 of the key>`. Redis bounds its own memory (maxmemory with
 * an LRU policy); entries also expire after CACHE_REDIS_TTL_S. A Redis that is down or slow
 * makes misses and counted errors, never failed requests: every call is cut off after
 * REDIS_TIMEOUT_MS.
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

export class RedisTier {
  readonly name = 'redis';
  private readonly keyv: Keyv<string>;
  private readonly adapter: KeyvRedis<string>;
  corrupt = 0;
  errors = 0;
  private lastErrorLog = 0;

  constructor(private readonly options: RedisTierOptions) {
    this.adapter = new KeyvRedis<string>(options.url, { throwOnConnectError: true, throwOnErrors: true, connectionTimeout: options.timeoutMs });
    this.keyv = new Keyv<string>({ store: this.adapter, namespace: options.namespace ?? 'convscope', throwOnErrors: true });
    this.keyv.on('error', (e: unknown) => this.failed(e));
    this.adapter.on('error', () => undefined); // reported through the rejected call
  }

  private failed(e: unknown): void {
    this.errors++;
    const now = Date.now();
    if (now - this.lastErrorLog > 10_000) {
      this.lastErrorLog = now;
      log.warn({ err: (e as Error)?.message ?? String(e), url: redact(this.options.url) }, 'redis cache tier unavailable; going on without it');
    }
  }

  private async call<T>(what: () => Promise<T>): Promise<T> {
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

  /** Connects now, so that a wrong REDIS_URL shows at start-up (as a warning: the tier degrades). */
  async open(): Promise<void> {
    try {
      await this.call(() => this.adapter.getClient());
    } catch (e) {
      this.failed(e);
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    let text: string | undefined;
    try {
      text = await this.call(() => this.keyv.get(DiskTier.idOf(key)));
    } catch (e) {
      this.failed(e);
      return undefined;
    }
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
    try {
      return await this.call(() => this.keyv.has(DiskTier.idOf(key)));
    } catch (e) {
      this.failed(e);
      return false;
    }
  }

  async set(key: string, payload: Buffer, ttlMs?: number): Promise<void> {
    const ttl = ttlMs ?? (this.options.ttlMs || undefined);
    try {
      await this.call(() => this.keyv.set(DiskTier.idOf(key), Buffer.concat(encodeEntry(key, payload)).toString('base64'), ttl));
    } catch (e) {
      this.failed(e);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.call(() => this.keyv.delete(DiskTier.idOf(key)));
    } catch (e) {
      this.failed(e);
    }
  }

  /** The Redis server's used_memory (all of its keys, not only ours), or undefined when unreachable. */
  async usedMemory(): Promise<number | undefined> {
    try {
      const client = (await this.call(() => this.adapter.getClient())) as { info(section: string): Promise<string> };
      const text = await this.call(() => client.info('memory'));
      const m = /^used_memory:(\d+)/m.exec(text);
      return m ? Number(m[1]) : undefined;
    } catch (e) {
      this.failed(e);
      return undefined;
    }
  }

  async close(): Promise<void> {
    try {
      await this.call(() => this.adapter.disconnect());
    } catch {
      await this.adapter.disconnect(true).catch(() => undefined);
    }
  }
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
