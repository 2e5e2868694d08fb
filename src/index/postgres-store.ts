/**
 * The index store in PostgreSQL (DATABASE_URL, store.ts): what API replicas and workers on
 * several machines share. Same tables as SQLite; top-k entries are bytea, times bigint ms.
 */
import pg from 'pg';
import { IndexRow, IndexStore, JobState, PackedTop, toRow, TopRow, unpackEntries } from './store';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS indexes (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, model_sha TEXT NOT NULL, dataset TEXT NOT NULL,
    fingerprint TEXT NOT NULL, layers TEXT NOT NULL, k INTEGER NOT NULL, state TEXT NOT NULL,
    next_image INTEGER NOT NULL, total INTEGER NOT NULL, error TEXT,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, owner TEXT, lease_until BIGINT NOT NULL DEFAULT 0);
  CREATE TABLE IF NOT EXISTS top_k (
    index_id TEXT NOT NULL, layer TEXT NOT NULL, channel INTEGER NOT NULL, entries BYTEA NOT NULL,
    PRIMARY KEY (index_id, layer, channel));
`;

export class PostgresIndexStore implements IndexStore {
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

  async create(row: Omit<IndexRow, 'createdAt' | 'updatedAt' | 'error' | 'owner'>): Promise<void> {
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
  }

  async claim(id: string, owner: string, until: number, dead = ''): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      "UPDATE indexes SET owner = $1, lease_until = $2 WHERE id = $3 AND state IN ('QUEUED', 'RUNNING') AND (owner IS NULL OR owner IN ($1, $5) OR lease_until < $4)",
      [owner, until, id, Date.now(), dead],
    );
    return rowCount === 1;
  }

  async checkpoint(id: string, owner: string, until: number, nextImage: number, changed: PackedTop[]): Promise<boolean> {
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
      if (changed.length > 0) {
        // One statement for every changed channel.
        await c.query(
          `INSERT INTO top_k (index_id, layer, channel, entries)
           SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bytea[])
           ON CONFLICT (index_id, layer, channel) DO UPDATE SET entries = EXCLUDED.entries`,
          [id, changed.map((t) => t.layer), changed.map((t) => t.channel), changed.map((t) => t.entries)],
        );
      }
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
