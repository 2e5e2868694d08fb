/**
 * Uploaded images, content-addressed: CACHE_DIR/uploads/<sha256>, written atomically, so an
 * upload's ID stays valid across restarts.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ImageInfo, ImageLimits, inspectImage } from './preprocess';

export interface StoredImage extends ImageInfo {
  sha256: string;
  bytes: Buffer;
}

export class ImageStore {
  private readonly dir: string;

  constructor(cacheDir: string, private readonly limits: ImageLimits) {
    this.dir = path.join(cacheDir, 'uploads');
    fs.mkdirSync(this.dir, { recursive: true });
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
    }
    return { ...info, sha256, bytes };
  }

  /** An uploaded image by hash, or undefined. */
  get(sha256: string): Buffer | undefined {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return undefined;
    try {
      return fs.readFileSync(path.join(this.dir, sha256));
    } catch {
      return undefined;
    }
  }
}
