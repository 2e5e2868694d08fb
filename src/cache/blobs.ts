/**
 * Rendered results (PNGs, .npy tensors), named by a sha256 that fixes their bytes, so a URL never
 * changes meaning and can be cached forever. Blobs live in the tiered store (memory → disk →
 * Redis) under `blob:<sha256>.<kind>`, bounded like everything else there. Two kinds of names:
 *
 * - Made on first fetch: the name is the hash of the rendering's key (renderKey), and the URL
 *   carries a small recipe of how to make the bytes (`?r=`, `url`) and its signature (`&s=`,
 *   HMAC-SHA256 of the name and the recipe under URL_SIGNING_KEY). Handing out the URL costs
 *   no rendering; GET renders it (service/renders.ts) only if the signature is this server's
 *   (or a replica's with the same key): a recipe nobody handed out is refused before anything
 *   is computed, so the URL is a capability granted by a query that passed the API's keys and
 *   cost limits. The bytes are kept — made again whenever they were evicted, after a restart or
 *   on another replica, with nothing stored but the URL. Projections' pictures and tensors.
 * - Made at once (`cached`): the name is the hash of the bytes, and `blobidx:<key>` → hash keeps
 *   which blob a computation produced, so a rendering is done once — also across restarts and
 *   processes. Evicted bytes answer 404 (with a hint) until the GraphQL field is queried again,
 *   which renders the same bytes under the same URL. (A whole-response cache entry that names a
 *   URL that cannot be served reads as a miss, apollo.ts, so the identical query re-renders too.)
 *
 * HTTP caches that hold the bytes keep serving them: the URL is immutable.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TieredStore } from './store';

export { LruBytes } from './memory';

export type BlobKind = 'png' | 'npy';

const HASH = /^[0-9a-f]{64}$/;

/**
 * The key that signs recipes: URL_SIGNING_KEY, or else a random one made once and kept in
 * `cacheDir`/url-signing.key (readable by this user only), so that URLs outlive a restart.
 */
export function urlSigningKey(configured: string | undefined, cacheDir: string): Buffer {
  if (configured) return Buffer.from(configured, 'utf8');
  const file = path.join(cacheDir, 'url-signing.key');
  fs.mkdirSync(cacheDir, { recursive: true });
  // Written aside, then linked in place only if none exists: processes sharing the folder that
  // start together all read the one key that won, never a file half-written.
  const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(aside, randomBytes(32).toString('hex'), { mode: 0o600 });
  try {
    fs.linkSync(aside, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    fs.rmSync(aside, { force: true });
  }
  const key = fs.readFileSync(file, 'utf8').trim();
  if (key.length < 32) throw new Error(`${file} holds no usable key (fewer than 32 characters): delete it, or set URL_SIGNING_KEY`);
  return Buffer.from(key, 'utf8');
}

/** What a recipe URL's query carries: `r` (the recipe) and `s` (its signature). */
export type RecipeCheck = { recipe: unknown } | { refused: string } | undefined;

export class BlobStore {
  /** A short name of the signing key, for caches of responses that hold signed URLs. */
  readonly signingKeyId: string;

  /** `baseUrl` (PUBLIC_URL, no trailing slash; '' = none) starts every blob's URL; `signingKey` signs recipes. */
  constructor(
    readonly store: TieredStore,
    readonly baseUrl: string,
    private readonly signingKey: Buffer,
  ) {
    this.signingKeyId = createHash('sha256').update('convscope url-signing key id').update(signingKey).digest('hex').slice(0, 16);
  }

  /** The signature of a recipe under a blob's name: 128 bits of HMAC-SHA256, base64url. */
  private sign(kind: BlobKind, hash: string, r: string): string {
    return createHmac('sha256', this.signingKey).update(`${kind}/${hash}?${r}`).digest().subarray(0, 16).toString('base64url');
  }

  /** The blob's URL; with a recipe (made on first fetch), the recipe rides along as `?r=` (base64url JSON) with its signature `&s=`. */
  url(kind: BlobKind, hash: string, recipe?: unknown): string {
    const url = kind === 'png' ? `${this.baseUrl}/img/${hash}.png` : `${this.baseUrl}/tensors/${hash}.npy`;
    if (recipe === undefined) return url;
    const r = Buffer.from(JSON.stringify(recipe)).toString('base64url');
    return `${url}?r=${r}&s=${this.sign(kind, hash, r)}`;
  }

  /**
   * The recipe of a URL's `?r=` if `s` is its signature under this blob's name; `refused` (with
   * why) when a recipe came with no valid signature; undefined when none came.
   */
  recipe(kind: BlobKind, hash: string, r: unknown, s: unknown): RecipeCheck {
    if (r === undefined) return undefined;
    if (typeof r !== 'string' || typeof s !== 'string' || r.length > 4096 || !HASH.test(hash)) return { refused: 'this URL carries no valid signature' };
    const expected = Buffer.from(this.sign(kind, hash, r));
    const sent = Buffer.from(s);
    // Constant time: a signature cannot be guessed byte by byte.
    if (sent.length !== expected.length || !timingSafeEqual(sent, expected)) {
      return { refused: "this URL's signature does not match its recipe: it was not handed out by this server (or a replica sharing its URL_SIGNING_KEY)" };
    }
    try {
      return { recipe: JSON.parse(Buffer.from(r, 'base64url').toString()) };
    } catch {
      return { refused: "this URL's recipe is not JSON" };
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
