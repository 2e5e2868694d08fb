/**
 * Uploaded images, content-addressed: CACHE_DIR/uploads/<sha256>, written atomically, so an
 * upload's ID stays valid across restarts, until the folder's bound (UPLOADS_MB) evicts it:
 * least recently used first (file mtimes, refreshed on use, carry the order across restarts).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ImageInfo, ImageLimits, inspectImage } from './preprocess';

export interface StoredImage extends ImageInfo {
  sha256: string;
  bytes: Buffer;
}

const HASH = /^[0-9a-f]{64}$/;

export class ImageStore {
  private readonly dir: string;
  /** File → size, least recently used first. */
  private readonly sizes = new Map<string, number>();
  private total = 0;

  constructor(
    cacheDir: string,
    private readonly limits: ImageLimits,
    /** Most bytes the folder holds. */
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {
    this.dir = path.join(cacheDir, 'uploads');
    fs.mkdirSync(this.dir, { recursive: true });
    const found = fs
      .readdirSync(this.dir)
      .filter((name) => HASH.test(name))
      .map((name) => ({ name, stat: fs.statSync(path.join(this.dir, name)) }))
      .sort((a, b) => a.stat.mtimeMs - b.stat.mtimeMs);
    for (const { name, stat } of found) this.used(name, stat.size);
    this.evict();
  }

  /** Checks the image (format, size limits) and keeps it. */
  async put(bytes: Buffer): Promise<StoredImage> {
    const info = await inspectImage(bytes, this.limits);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const file = path.join(this.dir, sha256);
    if (!fs.existsSync(file)) {
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, bytes);
      fs.renameSync(tmp, file);
    } else this.touch(file);
    this.used(sha256, bytes.length);
    this.evict(sha256);
    return { ...info, sha256, bytes };
  }

  /** An uploaded image by hash, or undefined (never uploaded, or evicted). */
  get(sha256: string): Buffer | undefined {
    if (!HASH.test(sha256)) return undefined;
    const file = path.join(this.dir, sha256);
    try {
      const bytes = fs.readFileSync(file);
      this.touch(file);
      this.used(sha256, bytes.length);
      return bytes;
    } catch {
      this.forget(sha256);
      return undefined;
    }
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.total;
  }

  private used(name: string, size: number): void {
    this.forget(name);
    this.sizes.set(name, size); // now the most recent
    this.total += size;
  }

  private forget(name: string): void {
    const size = this.sizes.get(name);
    if (size === undefined) return;
    this.sizes.delete(name);
    this.total -= size;
  }

  private touch(file: string): void {
    const now = new Date();
    try {
      fs.utimesSync(file, now, now);
    } catch {
      // gone meanwhile: get() finds out
    }
  }

  /** Deletes least recently used uploads until the folder is within its bound (never `keep`). */
  private evict(keep?: string): void {
    for (const [name] of this.sizes) {
      if (this.total <= this.maxBytes) break;
      if (name === keep) continue;
      this.forget(name);
      fs.rmSync(path.join(this.dir, name), { force: true });
    }
  }
}
