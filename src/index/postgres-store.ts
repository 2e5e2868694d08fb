/**
 * The index store in PostgreSQL (DATABASE_URL, store.ts): what API replicas and workers on
 * several machines share. Same tables as SQLite; top-k entries are bytea, times bigint ms. Also
 * the chunks of queued jobs (ChunkStore): which are merged, so that each is merged once.
 */
import pg from 'pg';
import { ChunkStore, FailedImage, IndexRow, JobState, PackedTop, toRow, TopRow, unpackEntries } from './store';
import { mergePacked } from './topk';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS indexes (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, model_sha TEXT NOT NULL, dataset TEXT NOT NULL,
    fingerprint TEXT NOT NULL, layers TEXT NOT NULL, k INTEGER NOT NULL, state TEXT NOT NULL,
    next_image INTEGER NOT NULL, total INTEGER NOT NULL, error TEXT,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, owner TEXT, lease_until BIGINT NOT NULL DEFAULT 0,
    chunk_size INTEGER);
  CREATE TABLE IF NOT EXISTS top_k (
    index_id TEXT NOT NULL, layer TEXT NOT NULL, channel INTEGER NOT NULL, entries BYTEA NOT NULL,
    PRIMARY KEY (index_id, layer, channel));
  CREATE TABLE IF NOT EXISTS failed_images (
    index_id TEXT NOT NULL, image INTEGER NOT NULL, name TEXT NOT NULL, error TEXT NOT NULL,
    PRIMARY KEY (index_id, image));
  -- Databases of earlier versions: the column is added only where it is missing, since ALTER TABLE
  -- waits for every transaction on the table (a stalled process's would stall every start).
  DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'indexes' AND column_name = 'chunk_size')
    THEN ALTER TABLE indexes ADD COLUMN chunk_size INTEGER; END IF;
  END $$;
  CREATE TABLE IF NOT EXISTS index_chunks (index_id TEXT NOT NULL, chunk INTEGER NOT NULL, PRIMARY KEY (index_id, chunk));
  CREATE TABLE IF NOT EXISTS index_chunk_starts (
    index_id TEXT NOT NULL, chunk INTEGER NOT NULL, starts INTEGER NOT NULL, PRIMARY KEY (index_id, chunk));
`;

export class PostgresIndexStore implements ChunkStore {
  private constructor(private readonly pool: pg.Pool) {}

  /** Connects and creates the tables if they are missing (several processes may do so at once: a lock orders them). */
  static async open(url: string): Promise<PostgresIndexStore> {
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => undefined); // an idle client lost; the next query reconnects or fails
    try {
      await transaction(pool, async (c) => {
        await c.query("SELECT pg_advisory_xact_lock(hashtext('convscope index schema'))");
        await c.query(SCHEMA);
      });
    } catch (e) {
      await pool.end();
      throw e;
    }
    return new PostgresIndexStore(pool);
  }

  async get(id: string): Promise<IndexRow | undefined> {
    const { rows } = await this.pool.query('SELECT * FROM indexes WHERE id = $1', [id]);
    return rows[0] && toRow(rows[0]);
  }

  async all(): Promise<IndexRow[]> {
    const { rows } = await this.pool.query('SELECT * FROM indexes ORDER BY created_at, id');
    return rows.map(toRow);
  }

  async create(row: Omit<IndexRow, 'createdAt' | 'updatedAt' | 'error' | 'owner' | 'chunkSize'>): Promise<void> {
    const now = Date.now();
    await this.pool.query(
      `INSERT INTO indexes (id, model, model_sha, dataset, fingerprint, layers, k, state, next_image, total, error, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $11) ON CONFLICT (id) DO NOTHING`,
      [row.id, row.model, row.modelId, row.dataset, row.fingerprint, JSON.stringify(row.layers), row.k, row.state, row.nextImage, row.total, now],
    );
  }

  async setState(id: string, state: JobState, error: string | null = null): Promise<void> {
    await this.pool.query(
      "UPDATE indexes SET state = $1::text, error = $2, updated_at = $3, owner = CASE WHEN $1::text = 'RUNNING' THEN owner END WHERE id = $4",
      [state, error, Date.now(), id],
    );
    // A job queued again (after it failed or was cancelled): its chunks' starts count from zero.
    if (state === 'QUEUED') await this.pool.query('DELETE FROM index_chunk_starts WHERE index_id = $1', [id]);
  }

  async claim(id: string, owner: string, until: number, dead = ''): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      // SKIP LOCKED: a row locked by the holder's checkpoint in flight is not taken (nor waited for:
      // a holder stopped mid-transaction would otherwise stall this call until it dies).
      `UPDATE indexes SET owner = $1, lease_until = $2
       WHERE id = (SELECT id FROM indexes WHERE id = $3 FOR UPDATE SKIP LOCKED)
         AND state IN ('QUEUED', 'RUNNING') AND (owner IS NULL OR owner IN ($1, $5) OR lease_until < $4)`,
      [owner, until, id, Date.now(), dead],
    );
    return rowCount === 1;
  }

  async checkpoint(id: string, owner: string, until: number, nextImage: number, changed: PackedTop[], failed: FailedImage[]): Promise<boolean> {
    return transaction(this.pool, async (c) => {
      // The row lock taken here orders this checkpoint against a concurrent claim or cancel.
      const { rowCount } = await c.query('UPDATE indexes SET next_image = $1, updated_at = $2, lease_until = $3 WHERE id = $4 AND owner = $5', [
        nextImage,
        Date.now(),
        until,
        id,
        owner,
      ]);
      if (rowCount !== 1) return false;
      await saveTops(c, id, changed);
      await saveFailed(c, id, failed);
      return true;
    });
  }

  async failedImages(id: string): Promise<FailedImage[]> {
    const { rows } = await this.pool.query<FailedImage>('SELECT image, name, error FROM failed_images WHERE index_id = $1 ORDER BY image', [id]);
    return rows;
  }

  async planChunks(id: string, size: number): Promise<IndexRow & { chunkSize: number }> {
    return transaction(this.pool, async (c) => {
      const { rows } = await c.query(
        "UPDATE indexes SET chunk_size = $2, next_image = 0 WHERE id = $1 AND chunk_size IS NULL AND state <> 'DONE' RETURNING id",
        [id, size],
      );
      // Progress made by a process without the queue (leases, from image 0 on) does not map onto chunks.
      if (rows.length === 1) await c.query('DELETE FROM top_k WHERE index_id = $1', [id]);
      const row = toRow((await c.query('SELECT * FROM indexes WHERE id = $1', [id])).rows[0]);
      return { ...row, chunkSize: row.chunkSize ?? size };
    });
  }

  async mergedChunks(id: string): Promise<Set<number>> {
    const { rows } = await this.pool.query<{ chunk: number }>('SELECT chunk FROM index_chunks WHERE index_id = $1', [id]);
    return new Set(rows.map((r) => r.chunk));
  }

  async startChunk(id: string, chunk: number): Promise<number> {
    const { rows } = await this.pool.query<{ starts: number }>(
      `INSERT INTO index_chunk_starts (index_id, chunk, starts) VALUES ($1, $2, 1)
       ON CONFLICT (index_id, chunk) DO UPDATE SET starts = index_chunk_starts.starts + 1 RETURNING starts`,
      [id, chunk],
    );
    return rows[0].starts;
  }

  async mergeChunk(id: string, chunk: number, images: number, tops: PackedTop[], failed: FailedImage[]): Promise<boolean> {
    return transaction(this.pool, async (c) => {
      // The job's row, locked: merges of the same job take turns.
      const job = (await c.query("SELECT * FROM indexes WHERE id = $1 AND state IN ('QUEUED', 'RUNNING') AND chunk_size IS NOT NULL FOR UPDATE", [id])).rows[0];
      if (!job) return false;
      const inserted = await c.query('INSERT INTO index_chunks (index_id, chunk) VALUES ($1, $2) ON CONFLICT DO NOTHING', [id, chunk]);
      if (inserted.rowCount !== 1) return false; // merged before (a chunk retried after its worker or Redis went away)
      const row = toRow(job);
      const saved = new Map(
        (await c.query<PackedTop>('SELECT layer, channel, entries FROM top_k WHERE index_id = $1', [id])).rows.map((t) => [
          `${t.channel} ${t.layer}`,
          t.entries,
        ]),
      );
      const changed = tops.flatMap((t) => {
        const before = saved.get(`${t.channel} ${t.layer}`);
        const entries = before ? mergePacked(before, t.entries, row.k) : t.entries;
        return before?.equals(entries) ? [] : [{ ...t, entries }];
      });
      await saveTops(c, id, changed);
      await saveFailed(c, id, failed);
      const chunks = Math.ceil(row.total / row.chunkSize!);
      const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM index_chunks WHERE index_id = $1', [id]);
      await c.query('UPDATE indexes SET next_image = next_image + $1, state = $2, updated_at = $3 WHERE id = $4', [
        images,
        Number(rows[0].n) === chunks ? 'DONE' : 'RUNNING',
        Date.now(),
        id,
      ]);
      return true;
    });
  }

  async tops(id: string): Promise<TopRow[]> {
    const { rows } = await this.pool.query<PackedTop>('SELECT layer, channel, entries FROM top_k WHERE index_id = $1 ORDER BY layer COLLATE "C", channel', [
      id,
    ]);
    return rows.flatMap(unpackEntries);
  }

  async top(id: string, layer: string, channel: number): Promise<TopRow[]> {
    const { rows } = await this.pool.query<PackedTop>('SELECT layer, channel, entries FROM top_k WHERE index_id = $1 AND layer = $2 AND channel = $3', [
      id,
      layer,
      channel,
    ]);
    return rows[0] ? unpackEntries(rows[0]) : [];
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Upserts channels' top-k, in one statement. */
async function saveTops(c: pg.PoolClient, id: string, tops: PackedTop[]): Promise<void> {
  if (tops.length === 0) return;
  await c.query(
    `INSERT INTO top_k (index_id, layer, channel, entries)
     SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bytea[])
     ON CONFLICT (index_id, layer, channel) DO UPDATE SET entries = EXCLUDED.entries`,
    [id, tops.map((t) => t.layer), tops.map((t) => t.channel), tops.map((t) => t.entries)],
  );
}

async function saveFailed(c: pg.PoolClient, id: string, failed: FailedImage[]): Promise<void> {
  if (failed.length === 0) return;
  await c.query(
    `INSERT INTO failed_images (index_id, image, name, error) SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[])
     ON CONFLICT (index_id, image) DO UPDATE SET error = EXCLUDED.error`,
    [id, failed.map((f) => f.image), failed.map((f) => f.name), failed.map((f) => f.error)],
  );
}

/** `work` in one transaction; a false result rolls it back. */
async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query(result === false ? 'ROLLBACK' : 'COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}
