/**
 * Rendered results (PNGs, .npy tensors), named by a sha256 that fixes their bytes, so a URL never
 * changes meaning and can be cached forever. Blobs live in the tiered store (memory → disk →
 * Redis) under `blob:<sha256>.<kind>`, bounded like everything else there. Two kinds of names:
 *
 * - Made on first fetch: the name is the hash of the rendering's key (renderKey), and the URL
 *   carries a small recipe of how to make the bytes (`?r=`, `url`). Handing out the URL costs
 *   no rendering; GET renders it (service/renders.ts), checks that the recipe gives the key the
 *   name says, and keeps the bytes — made again whenever they were evicted, after a restart or
 *   on another replica, with nothing stored but the URL. Projections' pictures and tensors.
 * - Made at once (`cached`): the name is the hash of the bytes, and `blobidx:<key>` → hash keeps
 *   which blob a computation produced, so a rendering is done once — also across restarts and
 *   processes. Evicted bytes answer 404 (with a hint) until the GraphQL field is queried again,
 *   which renders the same bytes under the same URL. (A whole-response cache entry that names a
 *   URL that cannot be served reads as a miss, apollo.ts, so the identical query re-renders too.)
 *
 * HTTP caches that hold the bytes keep serving them: the URL is immutable.
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

  /** The blob's URL; with a recipe (made on first fetch), the recipe rides along as `?r=` (base64url JSON). */
  url(kind: BlobKind, hash: string, recipe?: unknown): string {
    const url = kind === 'png' ? `${this.baseUrl}/img/${hash}.png` : `${this.baseUrl}/tensors/${hash}.npy`;
    return recipe === undefined ? url : `${url}?r=${Buffer.from(JSON.stringify(recipe)).toString('base64url')}`;
  }

  /** The recipe of a URL's `?r=`, or undefined when there is none or it is not JSON. */
  static recipe(r: unknown): unknown {
    if (typeof r !== 'string' || r.length > 4096) return undefined;
    try {
      return JSON.parse(Buffer.from(r, 'base64url').toString());
    } catch {
      return undefined;
    }
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

  /** Stores bytes made from a recipe under the name their URL gave them (`url` with a recipe). */
  async putAt(kind: BlobKind, hash: string, bytes: Uint8Array): Promise<void> {
    await this.store.set(BlobStore.key(kind, hash), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
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
