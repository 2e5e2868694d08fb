/**
 * The long-lived services of a convscope process, and how they are made from the configuration.
 * The server (server.ts) puts GraphQL and HTTP in front of them; the command line (cli.ts) uses
 * them without either.
 */
import path from 'node:path';
import { BlobStore, urlSigningKey } from '../cache/blobs';
import { openStore, TieredStore } from '../cache/store';
import { Config } from '../config';
import { Engine } from '../engine/engine';
import { GraphCache } from '../engine/graph-cache';
import { openRuntime } from '../engine/runtime';
import { DecodePool } from '../images/decode-pool';
import { ImageStore } from '../images/store';
import { ProcessJobs } from '../index/process-jobs';
import { JobManager } from '../index/jobs';
import { PostgresIndexStore } from '../index/postgres-store';
import { IndexQueue } from '../index/queue';
import { SqliteIndexStore } from '../index/sqlite-store';
import { Inference } from '../inference';
import { log } from '../log';
import { DatasetRegistry } from '../registry/datasets';
import { ModelRegistry } from '../registry/models';

export interface Services {
  config: Config;
  registry: ModelRegistry;
  engine: Engine;
  inference: Inference;
  blobs: BlobStore;
  /** The tiered result cache (memory → disk → Redis) under blobs, inference and Apollo's caches. */
  cache: TieredStore;
  images: ImageStore;
  datasets: DatasetRegistry;
  jobs: JobManager;
  /** Atlas and feature visualization jobs (index/process-jobs.ts). */
  processJobs: ProcessJobs;
}

export async function createServices(config: Config): Promise<Services> {
  log.level = config.logLevel;
  const runtime = await openRuntime(config.backend, config.threads, { worker: config.ortWorker });
  const engine = new Engine(runtime, {
    maxBatch: config.maxBatch,
    windowMs: config.batchWindowMs,
    idleStart: config.batchIdleStart,
    maxQueued: config.maxQueuedItems,
    sessionBytes: config.sessionMemoryBytes,
    sessionIdleMs: config.sessionIdleSeconds * 1000,
    graphCache: config.graphCacheBytes > 0 ? new GraphCache(path.join(config.cacheDir, 'graphs'), config.graphCacheBytes) : undefined,
    sharedWeights: config.sharedWeights,
  });
  const registry = await ModelRegistry.load(config.modelsDir, runtime, { ...config, shareWeights: engine.sharesWeights, weightsDir: engine.weightsDir });
  const cache = await openStore(config); // memory → CACHE_DIR/store → Redis (REDIS_URL)
  const blobs = new BlobStore(cache, config.publicUrl, urlSigningKey(config.urlSigningKey, config.cacheDir)); // URL_SIGNING_KEY signs projection URLs' recipes
  const images = new ImageStore(config.cacheDir, config, config.uploadsBytes);
  const inference = new Inference(engine, config, cache, DecodePool.open(config.decodeThreads, config));
  const datasets = DatasetRegistry.load(config.datasetsDir);
  // The index store: PostgreSQL shared by several processes (DATABASE_URL), else SQLite in CACHE_DIR.
  // With Redis too, jobs are queued in chunks that workers take (index/queue.ts).
  const postgres = config.databaseUrl ? await PostgresIndexStore.open(config.databaseUrl) : undefined;
  const indexStore = postgres ?? new SqliteIndexStore(config.cacheDir);
  const queue =
    postgres && config.redisUrl
      ? new IndexQueue(config.redisUrl, postgres, config.indexChunkImages, config.indexLeaseMs, config.indexChunkMaxStarts)
      : undefined;
  const jobs = new JobManager(indexStore, registry.models, datasets, engine, inference, config.maxBatch, config.indexCheckpointMs, config.indexLeaseMs, queue);
  return { config, engine, registry, blobs, images, cache, inference, datasets, jobs, processJobs: new ProcessJobs() };
}
