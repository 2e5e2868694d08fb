/**
 * The job queue (REDIS_URL and DATABASE_URL): index jobs split into chunks of images, queued in
 * BullMQ on Redis, taken by worker processes (`convscope worker`, and API processes unless
 * INDEX_IN_API is off), each chunk's top-k merged into the job's in PostgreSQL (ChunkStore).
 *
 * Nothing is lost and nothing counted twice:
 * - a worker that dies mid-chunk stops renewing its BullMQ lock; after INDEX_LEASE_S another
 *   worker's stalled-job check takes the chunk again;
 * - Redis restarted empty loses the queue: every worker queues again, every INDEX_LEASE_S and
 *   whenever its connection is back, the chunks of unfinished jobs not yet merged (reconcile);
 * - a chunk run twice (both of the above, or a worker that finished it while Redis was away)
 *   is merged once: the store records merged chunks in the merge's own transaction.
 * A chunk's BullMQ id is `<job>-<chunk>`: queuing one already queued or running adds nothing.
 * A chunk that stalls too often is dropped by BullMQ without a 'failed' event, and reconcile
 * queues it again, so it is retried rather than lost. But one that stops every worker that takes
 * it (it crashes them, or runs them out of memory) would go round for ever: the store counts each
 * chunk's starts, and a chunk started more than INDEX_CHUNK_MAX_STARTS times fails its job,
 * naming the chunk's images.
 */
import { Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { log } from '../log';
import { ChunkStore } from './store';

export interface ChunkTask {
  id: string;
  chunk: number;
}

const QUEUE = 'index-chunks';
const PREFIX = 'convscope';
/** A chunk that fails (not an image: those are left out and reported) is tried thrice, 1 s and 2 s apart, then fails its job. */
const ATTEMPTS = 3;

export class IndexQueue {
  private readonly connections: Redis[] = [];
  private readonly queue: Queue<ChunkTask>;
  private worker?: Worker<ChunkTask>;
  private reconciling?: NodeJS.Timeout;
  /** Chunks this process took, and how they ended (for /healthz). */
  readonly counts = { active: 0, completed: 0, failed: 0 };

  constructor(
    private readonly redisUrl: string,
    readonly store: ChunkStore,
    /** Images per chunk (INDEX_CHUNK_IMAGES). */
    private readonly chunkImages: number,
    /** How long a chunk's lock lasts without renewal (INDEX_LEASE_S): how soon a dead worker's chunk is taken again. */
    private readonly leaseMs: number,
    /** Starts of one chunk after which it fails its job (INDEX_CHUNK_MAX_STARTS; JobManager.runChunk). */
    readonly maxStarts: number,
  ) {
    // Queuing fails at once while Redis is away (the job stays recorded; reconcile queues it later).
    this.queue = new Queue<ChunkTask>(QUEUE, { connection: this.connect({ enableOfflineQueue: false }), prefix: PREFIX });
    this.queue.on('error', (e) => log.debug({ err: e.message }, 'index queue: redis unavailable'));
  }

  /** Queues the job's chunks not yet merged (giving it a chunk plan first if it has none). */
  async enqueue(id: string): Promise<void> {
    const row = await this.store.planChunks(id, this.chunkImages);
    const merged = await this.store.mergedChunks(id);
    const chunks = Array.from({ length: Math.ceil(row.total / row.chunkSize) }, (_, chunk) => chunk).filter((c) => !merged.has(c));
    await this.queue.addBulk(
      chunks.map((chunk) => ({
        name: 'chunk',
        data: { id, chunk },
        opts: { jobId: `${id}-${chunk}`, attempts: ATTEMPTS, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: true },
      })),
    );
  }

  /** Queues again the unmerged chunks of every unfinished job (after Redis lost them). */
  async reconcile(): Promise<void> {
    for (const row of await this.store.all()) {
      if (row.state === 'QUEUED' || row.state === 'RUNNING') await this.enqueue(row.id);
    }
  }

  /** Takes up to `concurrency` chunks at once; `failed` hears of a chunk that failed its last attempt. */
  work(concurrency: number, run: (task: ChunkTask) => Promise<void>, failed: (task: ChunkTask, e: Error) => Promise<void>): void {
    const connection = this.connect({ maxRetriesPerRequest: null }); // what BullMQ's workers require
    this.worker = new Worker<ChunkTask>(
      QUEUE,
      async (job: Job<ChunkTask>) => {
        this.counts.active++;
        try {
          await run(job.data);
        } finally {
          this.counts.active--;
        }
      },
      { connection, prefix: PREFIX, concurrency, lockDuration: this.leaseMs, stalledInterval: this.leaseMs, maxStalledCount: 2 },
    );
    this.worker.on('error', (e) => log.debug({ err: e.message }, 'index worker: redis unavailable'));
    this.worker.on('completed', () => this.counts.completed++);
    this.worker.on('failed', (job, e) => {
      if (!job || job.attemptsMade < ATTEMPTS) return; // retried
      this.counts.failed++;
      failed(job.data, e).catch((err: Error) => log.error({ job: job.data.id, err: err.message }, 'the index store failed'));
    });
    const reconcile = () =>
      this.reconcile().catch((e: Error) =>
        log.debug({ err: e.message }, 'index queue: could not queue unfinished jobs again (redis or the store unavailable)'),
      );
    connection.on('ready', () => void reconcile()); // at start, and when Redis is back (it may have restarted empty)
    this.reconciling = setInterval(reconcile, this.leaseMs);
  }

  /** Whether this process takes chunks and its Redis connection is up. */
  get ready(): boolean {
    return this.worker?.isRunning() === true && this.connections.every((c) => c.status === 'ready');
  }

  /** Stops taking chunks, lets those running finish (and merge), and disconnects. */
  async close(): Promise<void> {
    clearInterval(this.reconciling);
    await this.worker?.close();
    await this.queue.close();
    await Promise.allSettled(this.connections.map((c) => c.quit()));
  }

  private connect(options: { enableOfflineQueue?: boolean; maxRetriesPerRequest?: null }): Redis {
    const connection = new Redis(this.redisUrl, options);
    connection.on('error', (e: Error) => log.debug({ err: e.message }, 'index queue: redis unavailable'));
    this.connections.push(connection);
    return connection;
  }
}
