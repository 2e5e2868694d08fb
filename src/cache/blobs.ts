/**
 * Content-addressed store for rendered results (PNGs, .npy tensors): a blob's name is the
 * sha256 of its bytes, so its URL never changes meaning and can be cached forever. Blobs are
 * written to CACHE_DIR/blobs atomically (temp file + rename) and kept in a byte-bounded LRU in
 * memory. `cached(key, …)` remembers which blob a computation produced, so that it is done once.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type BlobKind = 'png' | 'npy';

export class LruBytes<V extends { byteLength: number }> {
  private readonly map = new Map<string, V>();
  private bytes = 0;
  constructor(private readonly limit: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    const old = this.map.get(key);
    if (old) {
      this.bytes -= old.byteLength;
      this.map.delete(key);
    }
    if (value.byteLength > this.limit) return;
    this.map.set(key, value);
    this.bytes += value.byteLength;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.limit) break;
      this.map.delete(k);
      this.bytes -= v.byteLength;
    }
  }
  get size(): number {
    return this.bytes;
  }
}

export class BlobStore {
  private readonly memory: LruBytes<Buffer>;
  private readonly dir: string;
  /** computation key → blob hash, and the computations in flight. */
  private readonly index = new Map<string, string>();
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(cacheDir: string, memoryBytes: number) {
    this.dir = path.join(cacheDir, 'blobs');
    fs.mkdirSync(this.dir, { recursive: true });
    this.memory = new LruBytes(memoryBytes);
  }

  static url(kind: BlobKind, hash: string): string {
    return kind === 'png' ? `/img/${hash}.png` : `/tensors/${hash}.npy`;
  }

  put(kind: BlobKind, bytes: Buffer): string {
    const hash = createHash('sha256').update(bytes).digest('hex');
    const name = `${hash}.${kind}`;
    this.memory.set(name, bytes);
    const file = path.join(this.dir, name);
    if (!fs.existsSync(file)) {
      const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      fs.writeFileSync(tmp, bytes);
      fs.renameSync(tmp, file);
    }
    return hash;
  }

  /** The blob's bytes; the hash is verified on the way in from disk. */
  get(kind: BlobKind, hash: string): Buffer | undefined {
    if (!/^[0-9a-f]{64}$/.test(hash)) return undefined;
    const name = `${hash}.${kind}`;
    const hit = this.memory.get(name);
    if (hit) return hit;
    const file = path.join(this.dir, name);
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch {
      return undefined;
    }
    if (createHash('sha256').update(bytes).digest('hex') !== hash) {
      fs.rmSync(file, { force: true });
      return undefined;
    }
    this.memory.set(name, bytes);
    return bytes;
  }

  /** The URL of the blob that `produce` makes for `key`, produced at most once at a time. */
  async cached(key: string, kind: BlobKind, produce: () => Promise<Buffer> | Buffer): Promise<string> {
    const known = this.index.get(key);
    if (known && this.get(kind, known)) return BlobStore.url(kind, known);
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = (async () => this.put(kind, await produce()))();
      this.inFlight.set(key, pending);
      pending.then((hash) => this.index.set(key, hash)).finally(() => this.inFlight.delete(key)).catch(() => undefined);
    }
    return BlobStore.url(kind, await pending);
  }
}
