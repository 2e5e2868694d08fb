/**
 * The disk tier: one file per entry under CACHE_DIR/store/<2 hex>/<62 hex> (the sha256 of the
 * key), bounded in bytes (CACHE_DISK_MB) with least-recently-used eviction. Writes are atomic
 * (temp file + rename), every file carries a checksum (entry.ts), and a file that fails it is
 * deleted and reported as a miss, so the caller recomputes. Access times live in an in-memory
 * index (oldest first) and in the files' mtimes, which rebuild the index at start-up.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CorruptEntryError, decodeEntry, encodeEntry } from './entry';

const TMP_STALE_MS = 60_000;

export class DiskTier {
  readonly name = 'disk';
  /** File id → bytes on disk, least recently used first. */
  private readonly index = new Map<string, number>();
  /** Shard folders known to exist (a mkdir per write cost more than the write's other syscalls). */
  private readonly folders = new Set<string>();
  private total = 0;
  evictions = 0;
  corrupt = 0;

  constructor(
    readonly dir: string,
    readonly limit: number,
  ) {}

  static idOf(key: string): string {
    return createHash('sha256').update(key).digest('hex');
  }

  fileOf(key: string): string {
    return this.file(DiskTier.idOf(key));
  }

  /** Opens a new file for writing, making its folder the first time (or if it was removed). */
  private async create(file: string): Promise<fs.promises.FileHandle> {
    const folder = path.dirname(file);
    if (this.folders.has(folder)) {
      try {
        return await fs.promises.open(file, 'w');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    await fs.promises.mkdir(folder, { recursive: true });
    this.folders.add(folder);
    return fs.promises.open(file, 'w');
  }

  private file(id: string): string {
    return path.join(this.dir, id.slice(0, 2), id.slice(2));
  }

  /** Rebuilds the index from what is on disk (oldest access first) and enforces the bound. */
  async open(): Promise<void> {
    await fs.promises.mkdir(this.dir, { recursive: true });
    const found: { id: string; size: number; at: number }[] = [];
    const now = Date.now();
    for (const sub of await fs.promises.readdir(this.dir, { withFileTypes: true })) {
      if (!sub.isDirectory() || !/^[0-9a-f]{2}$/.test(sub.name)) continue;
      const subdir = path.join(this.dir, sub.name);
      for (const name of await fs.promises.readdir(subdir)) {
        const file = path.join(subdir, name);
        const stat = await fs.promises.stat(file).catch(() => undefined);
        if (!stat?.isFile()) continue;
        if (name.endsWith('.tmp')) {
          // Left by a crash mid-write (or still being written by another process: leave young ones).
          if (now - stat.mtimeMs > TMP_STALE_MS) await fs.promises.rm(file, { force: true });
          continue;
        }
        if (/^[0-9a-f]{62}$/.test(name)) found.push({ id: sub.name + name, size: stat.size, at: stat.mtimeMs });
      }
    }
    found.sort((a, b) => a.at - b.at);
    for (const f of found) this.account(f.id, f.size);
    await this.evict();
  }

  private account(id: string, size: number): void {
    const old = this.index.get(id);
    if (old !== undefined) {
      this.total -= old;
      this.index.delete(id);
    }
    this.index.set(id, size);
    this.total += size;
  }

  private forget(id: string): void {
    const old = this.index.get(id);
    if (old === undefined) return;
    this.total -= old;
    this.index.delete(id);
  }

  /** Deletes least recently used files until the total is within the bound. */
  private async evict(keep?: string): Promise<void> {
    const victims: string[] = [];
    for (const [id, size] of this.index) {
      if (this.total <= this.limit) break;
      if (id === keep) continue;
      this.index.delete(id);
      this.total -= size;
      victims.push(id);
    }
    this.evictions += victims.length;
    await Promise.all(victims.map((id) => fs.promises.rm(this.file(id), { force: true })));
  }

  /** The payload stored for `key`, or undefined (missing, or corrupt: then deleted). */
  async get(key: string): Promise<Buffer | undefined> {
    const id = DiskTier.idOf(key);
    const file = this.file(id);
    // A miss is the common case for new work: answer it with one synchronous stat (microseconds)
    // rather than an async read queued in libuv's pool behind image decoding and cache writes.
    // Unindexed files are still read: another process sharing the folder may have written them.
    if (!this.index.has(id) && !fs.existsSync(file)) return undefined;
    let bytes: Buffer;
    try {
      bytes = await fs.promises.readFile(file);
    } catch {
      this.forget(id);
      return undefined;
    }
    let payload: Buffer;
    try {
      payload = decodeEntry(key, bytes);
    } catch (e) {
      if (!(e instanceof CorruptEntryError)) throw e;
      this.corrupt++;
      this.forget(id);
      await fs.promises.rm(file, { force: true });
      return undefined;
    }
    // Most recently used: last in the index, and the file's mtime for the next start-up.
    const known = this.index.has(id);
    this.account(id, bytes.length);
    if (!known) await this.evict(id); // written by another process sharing the folder
    const now = new Date();
    fs.promises.utimes(file, now, now).catch(() => undefined);
    return payload;
  }

  /** Known to be on disk (not read, so not verified: get() is). */
  has(key: string): boolean {
    return this.index.has(DiskTier.idOf(key));
  }

  async set(key: string, payload: Buffer): Promise<void> {
    const entry = encodeEntry(key, payload);
    const size = entry[0].length + entry[1].length;
    if (size > this.limit) return;
    const id = DiskTier.idOf(key);
    const file = this.file(id);
    // Make room first, so that the folder never holds more than the bound.
    this.account(id, size);
    await this.evict(id);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      const handle = await this.create(tmp);
      try {
        const { bytesWritten } = await handle.writev(entry);
        if (bytesWritten !== size) throw new Error(`short write: ${bytesWritten} of ${size} bytes (disk full?)`);
      } finally {
        await handle.close();
      }
      await fs.promises.rename(tmp, file);
    } catch (e) {
      this.forget(id);
      await fs.promises.rm(tmp, { force: true });
      throw e;
    }
    // Evicted by a concurrent write while this one was in flight: don't leave it untracked.
    if (!this.index.has(id)) await fs.promises.rm(file, { force: true });
  }

  async delete(key: string): Promise<void> {
    const id = DiskTier.idOf(key);
    this.forget(id);
    await fs.promises.rm(this.file(id), { force: true });
  }

  get bytes(): number {
    return this.total;
  }

  get entries(): number {
    return this.index.size;
  }
}
