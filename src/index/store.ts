/**
 * The SQLite database of top-k indexes (CACHE_DIR/index.sqlite): one row per index job with its
 * progress, and its current top-k rows. A job checkpoints by writing both in one transaction,
 * so after a crash the database holds a consistent state to resume from.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { Candidate } from './topk';

export const JOB_STATES = ['QUEUED', 'RUNNING', 'DONE', 'FAILED', 'CANCELLED'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface IndexRow {
  id: string;
  model: string;
  modelSha: string;
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
      CREATE TABLE IF NOT EXISTS top (
        index_id TEXT NOT NULL, layer TEXT NOT NULL, channel INTEGER NOT NULL, rank INTEGER NOT NULL,
        value REAL NOT NULL, image INTEGER NOT NULL, y INTEGER NOT NULL, x INTEGER NOT NULL,
        PRIMARY KEY (index_id, layer, channel, rank));
    `);
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
      .run(row.id, row.model, row.modelSha, row.dataset, row.fingerprint, JSON.stringify(row.layers), row.k, row.state, row.nextImage, row.total, now, now);
  }

  setState(id: string, state: JobState, error: string | null = null): void {
    this.db.prepare('UPDATE indexes SET state = ?, error = ?, updated_at = ? WHERE id = ?').run(state, error, Date.now(), id);
  }

  /** Saves the changed channels' top-k and the progress, atomically. */
  checkpoint(id: string, nextImage: number, changed: { layer: string; channel: number; entries: Candidate[] }[]): void {
    const remove = this.db.prepare('DELETE FROM top WHERE index_id = ? AND layer = ? AND channel = ?');
    const insert = this.db.prepare('INSERT INTO top (index_id, layer, channel, rank, value, image, y, x) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const progress = this.db.prepare('UPDATE indexes SET next_image = ?, updated_at = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const c of changed) {
        remove.run(id, c.layer, c.channel);
        c.entries.forEach((e, rank) => insert.run(id, c.layer, c.channel, rank, e.value, e.image, e.y, e.x));
      }
      progress.run(nextImage, Date.now(), id);
    })();
  }

  /** Every saved top-k row of an index (to resume from). */
  tops(id: string): TopRow[] {
    return this.db.prepare('SELECT layer, channel, rank, value, image, y, x FROM top WHERE index_id = ? ORDER BY layer, channel, rank').all(id) as TopRow[];
  }

  /** One channel's top-k, best first. */
  top(id: string, layer: string, channel: number): TopRow[] {
    return this.db
      .prepare('SELECT layer, channel, rank, value, image, y, x FROM top WHERE index_id = ? AND layer = ? AND channel = ? ORDER BY rank')
      .all(id, layer, channel) as TopRow[];
  }

  close(): void {
    this.db.close();
  }
}

function toRow(r: Record<string, unknown>): IndexRow {
  return {
    id: r.id as string,
    model: r.model as string,
    modelSha: r.model_sha as string,
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
