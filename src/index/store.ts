/**
 * The SQLite database of top-k indexes (CACHE_DIR/index.sqlite): one row per index job with its
 * progress, and one row per channel with its current top-k. A job checkpoints by writing both in
 * one transaction, so after a crash the database holds a consistent state to resume from.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { Candidate, packCandidates } from './topk';

export const JOB_STATES = ['QUEUED', 'RUNNING', 'DONE', 'FAILED', 'CANCELLED'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface IndexRow {
  id: string;
  model: string;
  /** The model's identity: its .onnx sha256 and its sidecar's preprocessing (keys.ts modelCacheId); column model_sha. */
  modelId: string;
  dataset: string;
  fingerprint: string;
  layers: string[];
  k: number;
  state: JobState;
  nextImage: number;
  total: number;
  error: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface TopRow extends Candidate {
  layer: string;
  channel: number;
  rank: number;
}

export class IndexStore {
  readonly db: Database.Database;

  constructor(cacheDir: string) {
    fs.mkdirSync(cacheDir, { recursive: true });
    this.db = new Database(path.join(cacheDir, 'index.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS indexes (
        id TEXT PRIMARY KEY, model TEXT NOT NULL, model_sha TEXT NOT NULL, dataset TEXT NOT NULL,
        fingerprint TEXT NOT NULL, layers TEXT NOT NULL, k INTEGER NOT NULL, state TEXT NOT NULL,
        next_image INTEGER NOT NULL, total INTEGER NOT NULL, error TEXT,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS top_k (
        index_id TEXT NOT NULL, layer TEXT NOT NULL, channel INTEGER NOT NULL, entries BLOB NOT NULL,
        PRIMARY KEY (index_id, layer, channel)) WITHOUT ROWID;
    `);
    this.migrateRowPerEntry();
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
      for (let i = 0; i < rows.length; ) {
        let j = i;
        while (j < rows.length && rows[j].index_id === rows[i].index_id && rows[j].layer === rows[i].layer && rows[j].channel === rows[i].channel) j++;
        insert.run(rows[i].index_id, rows[i].layer, rows[i].channel, packCandidates(rows.slice(i, j)));
        i = j;
      }
      this.db.exec('DROP TABLE top');
    })();
  }

  get(id: string): IndexRow | undefined {
    const r = this.db.prepare('SELECT * FROM indexes WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r && toRow(r);
  }

  all(): IndexRow[] {
    return (this.db.prepare('SELECT * FROM indexes ORDER BY created_at').all() as Record<string, unknown>[]).map(toRow);
  }

  create(row: Omit<IndexRow, 'createdAt' | 'updatedAt' | 'error'>): void {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO indexes (id, model, model_sha, dataset, fingerprint, layers, k, state, next_image, total, error, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
      )
      .run(row.id, row.model, row.modelId, row.dataset, row.fingerprint, JSON.stringify(row.layers), row.k, row.state, row.nextImage, row.total, now, now);
  }

  setState(id: string, state: JobState, error: string | null = null): void {
    this.db.prepare('UPDATE indexes SET state = ?, error = ?, updated_at = ? WHERE id = ?').run(state, error, Date.now(), id);
  }

  /** Saves the changed channels' top-k and the progress, atomically. */
  checkpoint(id: string, nextImage: number, changed: { layer: string; channel: number; entries: Buffer }[]): void {
    const save = this.db.prepare('INSERT OR REPLACE INTO top_k (index_id, layer, channel, entries) VALUES (?, ?, ?, ?)');
    const progress = this.db.prepare('UPDATE indexes SET next_image = ?, updated_at = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const c of changed) save.run(id, c.layer, c.channel, c.entries);
      progress.run(nextImage, Date.now(), id);
    })();
  }

  /** Every saved top-k row of an index (to resume from). */
  tops(id: string): TopRow[] {
    const saved = this.db.prepare('SELECT layer, channel, entries FROM top_k WHERE index_id = ? ORDER BY layer, channel').all(id) as Packed[];
    return saved.flatMap(unpackEntries);
  }

  /** One channel's top-k, best first. */
  top(id: string, layer: string, channel: number): TopRow[] {
    const saved = this.db.prepare('SELECT layer, channel, entries FROM top_k WHERE index_id = ? AND layer = ? AND channel = ?').get(id, layer, channel) as Packed | undefined;
    return saved ? unpackEntries(saved) : [];
  }

  close(): void {
    this.db.close();
  }
}

/** A channel's top-k as stored: its entries packed (packCandidates). */
interface Packed {
  layer: string;
  channel: number;
  entries: Buffer;
}

function unpackEntries({ layer, channel, entries }: Packed): TopRow[] {
  const v = new Float64Array(entries.buffer.slice(entries.byteOffset, entries.byteOffset + entries.byteLength));
  return Array.from({ length: v.length / 4 }, (_, rank) => ({ layer, channel, rank, value: v[4 * rank], image: v[4 * rank + 1], y: v[4 * rank + 2], x: v[4 * rank + 3] }));
}

function toRow(r: Record<string, unknown>): IndexRow {
  return {
    id: r.id as string,
    model: r.model as string,
    modelId: r.model_sha as string,
    dataset: r.dataset as string,
    fingerprint: r.fingerprint as string,
    layers: JSON.parse(r.layers as string),
    k: r.k as number,
    state: r.state as JobState,
    nextImage: r.next_image as number,
    total: r.total as number,
    error: (r.error as string) ?? null,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}
