/**
 * The index store in SQLite (CACHE_DIR/index.sqlite), the embedded default (store.ts). Its calls
 * are synchronous underneath; the interface is async for the PostgreSQL store's sake.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { FailedImage, IndexRow, IndexStore, JobState, PackedTop, toRow, TopRow, unpackEntries } from './store';
import { Candidate, packCandidates } from './topk';

export class SqliteIndexStore implements IndexStore {
  readonly db: Database.Database;

  constructor(cacheDir: string) {
    fs.mkdirSync(cacheDir, { recursive: true });
    this.db = new Database(path.join(cacheDir, 'index.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000'); // another process (convscope index, a second server) may be writing
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS indexes (
        id TEXT PRIMARY KEY, model TEXT NOT NULL, model_sha TEXT NOT NULL, dataset TEXT NOT NULL,
        fingerprint TEXT NOT NULL, layers TEXT NOT NULL, k INTEGER NOT NULL, state TEXT NOT NULL,
        next_image INTEGER NOT NULL, total INTEGER NOT NULL, error TEXT,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS top_k (
        index_id TEXT NOT NULL, layer TEXT NOT NULL, channel INTEGER NOT NULL, entries BLOB NOT NULL,
        PRIMARY KEY (index_id, layer, channel)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS failed_images (
        index_id TEXT NOT NULL, image INTEGER NOT NULL, name TEXT NOT NULL, error TEXT NOT NULL,
        PRIMARY KEY (index_id, image)) WITHOUT ROWID;
    `);
    this.migrateRowPerEntry();
    // Databases of earlier versions had no leases.
    const columns = (this.db.prepare('PRAGMA table_info(indexes)').all() as { name: string }[]).map((c) => c.name);
    if (!columns.includes('owner'))
      this.db.exec('ALTER TABLE indexes ADD COLUMN owner TEXT; ALTER TABLE indexes ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0');
  }

  /**
   * Databases of earlier versions kept one row per entry (table top): a checkpoint wrote k rows
   * per changed channel, ten times the work of one row with the entries packed.
   */
  private migrateRowPerEntry(): void {
    const old = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'top'").get();
    if (!old) return;
    const rows = this.db.prepare('SELECT index_id, layer, channel, value, image, y, x FROM top ORDER BY index_id, layer, channel, rank').all() as (Candidate & {
      index_id: string;
      layer: string;
      channel: number;
    })[];
    // OR IGNORE: rows of the new layout are newer than old ones left by an older process.
    const insert = this.db.prepare('INSERT OR IGNORE INTO top_k (index_id, layer, channel, entries) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      for (let i = 0; i < rows.length;) {
        let j = i;
        while (j < rows.length && rows[j].index_id === rows[i].index_id && rows[j].layer === rows[i].layer && rows[j].channel === rows[i].channel) j++;
        insert.run(rows[i].index_id, rows[i].layer, rows[i].channel, packCandidates(rows.slice(i, j)));
        i = j;
      }
      this.db.exec('DROP TABLE top');
    })();
  }

  async get(id: string): Promise<IndexRow | undefined> {
    const r = this.db.prepare('SELECT * FROM indexes WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r && toRow(r);
  }

  async all(): Promise<IndexRow[]> {
    return (this.db.prepare('SELECT * FROM indexes ORDER BY created_at').all() as Record<string, unknown>[]).map(toRow);
  }

  async create(row: Omit<IndexRow, 'createdAt' | 'updatedAt' | 'error' | 'owner' | 'chunkSize'>): Promise<void> {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT OR IGNORE INTO indexes (id, model, model_sha, dataset, fingerprint, layers, k, state, next_image, total, error, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
      )
      .run(row.id, row.model, row.modelId, row.dataset, row.fingerprint, JSON.stringify(row.layers), row.k, row.state, row.nextImage, row.total, now, now);
  }

  async setState(id: string, state: JobState, error: string | null = null): Promise<void> {
    this.db
      .prepare("UPDATE indexes SET state = ?, error = ?, updated_at = ?, owner = CASE WHEN ? = 'RUNNING' THEN owner END WHERE id = ?")
      .run(state, error, Date.now(), state, id);
  }

  async claim(id: string, owner: string, until: number, dead = ''): Promise<boolean> {
    const taken = this.db
      .prepare(
        "UPDATE indexes SET owner = ?, lease_until = ? WHERE id = ? AND state IN ('QUEUED', 'RUNNING') AND (owner IS NULL OR owner IN (?, ?) OR lease_until < ?)",
      )
      .run(owner, until, id, owner, dead, Date.now());
    return taken.changes === 1;
  }

  async checkpoint(id: string, owner: string, until: number, nextImage: number, changed: PackedTop[], failed: FailedImage[]): Promise<boolean> {
    const save = this.db.prepare('INSERT OR REPLACE INTO top_k (index_id, layer, channel, entries) VALUES (?, ?, ?, ?)');
    const fail = this.db.prepare('INSERT OR REPLACE INTO failed_images (index_id, image, name, error) VALUES (?, ?, ?, ?)');
    const progress = this.db.prepare('UPDATE indexes SET next_image = ?, updated_at = ?, lease_until = ? WHERE id = ? AND owner = ?');
    return this.db.transaction(() => {
      if (progress.run(nextImage, Date.now(), until, id, owner).changes !== 1) return false;
      for (const c of changed) save.run(id, c.layer, c.channel, c.entries);
      for (const f of failed) fail.run(id, f.image, f.name, f.error);
      return true;
    })();
  }

  async failedImages(id: string): Promise<FailedImage[]> {
    return this.db.prepare('SELECT image, name, error FROM failed_images WHERE index_id = ? ORDER BY image').all(id) as FailedImage[];
  }

  async tops(id: string): Promise<TopRow[]> {
    const saved = this.db.prepare('SELECT layer, channel, entries FROM top_k WHERE index_id = ? ORDER BY layer, channel').all(id) as PackedTop[];
    return saved.flatMap(unpackEntries);
  }

  async top(id: string, layer: string, channel: number): Promise<TopRow[]> {
    const saved = this.db.prepare('SELECT layer, channel, entries FROM top_k WHERE index_id = ? AND layer = ? AND channel = ?').get(id, layer, channel) as
      PackedTop | undefined;
    return saved ? unpackEntries(saved) : [];
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
