/**
 * Content-addressed rendered results (PNGs, .npy tensors): a blob's name is the sha256 of its
 * bytes, so its URL never changes meaning and can be cached forever. Blobs live in the tiered
 * store (memory → disk → Redis) under `blob:<sha256>.<kind>`, bounded like everything else there.
 *
 * `cached(key, kind, produce)` keeps, in the same store, which blob a computation produced
 * (`blobidx:<key>` → hash), so a rendering is done once — also across restarts and processes.
 *
 * Eviction: a blob's bytes may be evicted while its URL is still known to a client. GET on that
 * URL then answers 404 (with a hint); the next GraphQL query of the field finds the blob missing,
 * renders it again — rendering is deterministic, so the same bytes come back under the same URL
 * — and the URL works again. (A whole-response cache entry that names a missing blob reads as a
 * miss, apollo.ts, so the identical query re-renders too.) HTTP caches that hold the bytes keep
 * serving them: the URL is immutable.
 */
import { createHash } from 'node:crypto';
import { TieredStore } from './store';

export { LruBytes } from './memory';

export type BlobKind = 'png' | 'npy';

const HASH = /^[0-9a-f]{64}$/;

export class BlobStore {
  /** `baseUrl` (PUBLIC_URL, no trailing slash; '' = none) starts every blob's URL. */
  constructor(
    readonly store: TieredStore,
    readonly baseUrl = '',
  ) {}

  url(kind: BlobKind, hash: string): string {
    return kind === 'png' ? `${this.baseUrl}/img/${hash}.png` : `${this.baseUrl}/tensors/${hash}.npy`;
  }

  static key(kind: BlobKind, hash: string): string {
    return `blob:${hash}.${kind}`;
  }

  /**
   * Stores the bytes and returns their hash. Always written (the same bytes under the same name),
   * so a damaged copy that has not been read yet is replaced rather than trusted.
   */
  async put(kind: BlobKind, bytes: Uint8Array): Promise<string> {
    const hash = createHash('sha256').update(bytes).digest('hex');
    await this.store.set(BlobStore.key(kind, hash), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return hash;
  }

  /** The blob's bytes, or undefined when it was never made or has been evicted. */
  async get(kind: BlobKind, hash: string): Promise<Buffer | undefined> {
    if (!HASH.test(hash)) return undefined;
    return this.store.get(BlobStore.key(kind, hash));
  }

  /** The URL of the blob that `produce` makes for `key`: produced once, and again only if evicted. */
  async cached(key: string, kind: BlobKind, produce: () => Promise<Uint8Array> | Uint8Array): Promise<string> {
    const indexKey = `blobidx:${kind}:${key}`;
    const lookup = async (): Promise<string | undefined> => {
      const known = await this.store.get(indexKey);
      const hash = known?.toString('latin1');
      // The blob itself is read (and verified) too: an index entry may outlive its evicted blob.
      if (hash && HASH.test(hash) && (await this.store.get(BlobStore.key(kind, hash)))) return hash;
      return undefined;
    };
    // Single flight: concurrent requests for one rendering render once.
    const hash =
      (await lookup()) ??
      (await this.store.singleFlight(indexKey, async () => {
        const again = await lookup();
        if (again) return again;
        const made = await this.put(kind, await produce());
        await this.store.set(indexKey, Buffer.from(made, 'latin1'));
        return made;
      }));
    return this.url(kind, hash);
  }
}
