/**
 * Apollo's caches over the tiered store: a Keyv store adapter (so Keyv adds expiry and Apollo's
 * KeyvAdapter makes it a KeyValueCache) that the server uses for automatic persisted queries,
 * and the whole-response cache plugin, which honours the schema's @cacheControl hints. Both are
 * then shared by every process on the same Redis, and survive restarts on disk.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import responseCachePlugin from '@apollo/server-plugin-response-cache';
import { KeyvAdapter } from '@apollo/utils.keyvadapter';
import type { KeyValueCache } from '@apollo/utils.keyvaluecache';
import Keyv, { KeyvStoreAdapter } from 'keyv';
import { BlobKind, BlobStore } from './blobs';
import { CACHE_FORMAT, ENGINE_VERSION, KeyedModel, modelCacheId } from './keys';
import { TieredStore } from './store';

/** Keyv's store interface over the tiered store: strings in, strings out, under a prefix. */
export class StoreKeyvAdapter extends EventEmitter implements KeyvStoreAdapter {
  opts = { dialect: 'convscope-tiered' };
  namespace?: string;
  constructor(
    private readonly store: TieredStore,
    private readonly prefix = 'kv:',
  ) {
    super();
  }
  async get<Value>(key: string): Promise<Value | undefined> {
    const bytes = await this.store.get(this.prefix + key);
    return bytes?.toString('utf8') as Value | undefined;
  }
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    await this.store.set(this.prefix + key, Buffer.from(text, 'utf8'), ttl);
    return true;
  }
  async delete(key: string): Promise<boolean> {
    await this.store.delete(this.prefix + key);
    return true;
  }
  async has(key: string): Promise<boolean> {
    return this.store.has(this.prefix + key);
  }
  async clear(): Promise<void> {
    // Entries are content-addressed and expire by themselves; there is nothing to clear by namespace.
  }
}

/** Apollo's KeyValueCache (APQ, and anything else that uses the server's `cache`) over the store. */
export function apolloCache(store: TieredStore): KeyValueCache<string> {
  const keyv = new Keyv<string>({ store: new StoreKeyvAdapter(store), namespace: 'apollo' });
  keyv.on('error', () => undefined); // the store already counts and logs its tiers' failures
  return new KeyvAdapter(keyv, { disableBatchReads: true });
}

/**
 * A fingerprint of what responses depend on besides the query: the served models (file and
 * preprocessing), the datasets (their fingerprints: image names, sizes, times and labels) and
 * the engine version. Part of every response-cache key, so a model file or a dataset image
 * swapped under the same name never gets an old answer (resolvers/cache-control.ts).
 */
export function servedFingerprint(models: Iterable<KeyedModel & { name: string }>, datasets: Iterable<{ name: string; fingerprint: string }>): string {
  const h = createHash('sha256').update(`${ENGINE_VERSION}/${CACHE_FORMAT}`);
  for (const m of [...models].sort((a, b) => a.name.localeCompare(b.name))) h.update(`\0${m.name}\0${modelCacheId(m)}`);
  h.update('\0datasets');
  for (const d of [...datasets].sort((a, b) => a.name.localeCompare(b.name))) h.update(`\0${d.name}\0${d.fingerprint}`);
  return h.digest('hex');
}

/** A blob URL; one with a recipe (`?r=`) is always served (made again if need be), so it is not checked. */
const BLOB_URL = /\/(?:img|tensors)\/([0-9a-f]{64})\.(png|npy)(?!\?r=)/g;

/**
 * A cached response is only as good as the blobs its URLs name: one whose blob has been evicted
 * reads as a miss, so the resolvers run and render the blob again (same bytes, same URL) instead
 * of the cache handing out a URL that answers 404 until the entry expires.
 */
export class BlobCheckingCache implements KeyValueCache<string> {
  constructor(
    private readonly inner: KeyValueCache<string>,
    private readonly store: TieredStore,
  ) {}
  async get(key: string): Promise<string | undefined> {
    const value = await this.inner.get(key);
    if (value === undefined) return undefined;
    for (const [, hash, kind] of value.matchAll(BLOB_URL)) {
      if (!(await this.store.has(BlobStore.key(kind as BlobKind, hash)))) return undefined;
    }
    return value;
  }
  set(key: string, value: string, options?: { ttl?: number | null }): Promise<void> {
    return this.inner.set(key, value, options);
  }
  delete(key: string): Promise<boolean | void> {
    return this.inner.delete(key);
  }
}

/** Whole responses of cacheable operations (every field's @cacheControl maxAge > 0, resolvers/cache-control.ts), for maxAge seconds. */
export function responseCache<C extends BaseContext>(store: TieredStore, fingerprint: () => string): ApolloServerPlugin<C> {
  return responseCachePlugin<C>({ cache: new BlobCheckingCache(apolloCache(store), store), extraCacheKeyData: async () => fingerprint() });
}
