/**
 * GET /metrics in Prometheus text format (prom-client): the cache's hits, misses, bytes and
 * evictions per tier, the engine's runs, batch sizes, run times and queue waits, and Node's
 * process metrics. One registry per server, so several servers in one process (tests) don't mix.
 */
import { RequestHandler } from 'express';
import client from 'prom-client';
import { TieredStore } from '../cache/store';
import { Engine } from '../engine/engine';

export interface Metrics {
  registry: client.Registry;
  route: RequestHandler;
  /** Stops observing the engine. */
  close(): void;
}

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(services: { cache: TieredStore; engine: Engine }): Metrics {
  const { cache, engine } = services;
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const registers = [registry];

  /** A counter whose value is read from the store at scrape time, per tier. */
  const tierCounter = (name: string, help: string, read: (tier: (typeof cache.tiers)[number]) => number) =>
    new client.Counter({
      name,
      help,
      labelNames: ['tier'],
      registers,
      collect() {
        this.reset();
        for (const tier of cache.tiers) this.labels(tier).inc(read(tier));
      },
    });
  const info = () => new Map(cache.info().map((i) => [i.name, i]));

  tierCounter('convscope_cache_hits_total', 'Cache lookups answered by this tier.', (t) => cache.stats[t].hits);
  tierCounter('convscope_cache_misses_total', 'Cache lookups this tier could not answer (the next tier is asked).', (t) => cache.stats[t].misses);
  tierCounter('convscope_cache_writes_total', 'Entries written to this tier.', (t) => cache.stats[t].writes);
  tierCounter('convscope_cache_errors_total', 'Failed calls to this tier (treated as misses).', (t) =>
    t === 'redis' ? (cache.redis?.errors ?? 0) : cache.stats[t].errors,
  );
  tierCounter('convscope_cache_evictions_total', 'Entries evicted to keep the byte bound.', (t) => info().get(t)?.evictions ?? 0);
  tierCounter('convscope_cache_corrupt_total', 'Entries that failed their checksum: deleted and recomputed, never served.', (t) => info().get(t)?.corrupt ?? 0);

  new client.Gauge({
    name: 'convscope_cache_bytes',
    help: "Bytes held by the tier (memory: values and keys; disk: files; redis: the Redis server's used_memory).",
    labelNames: ['tier'],
    registers,
    async collect() {
      this.reset();
      for (const i of cache.info()) if (i.bytes !== undefined) this.labels(i.name).set(i.bytes);
      if (cache.redis) {
        const used = await cache.redis.usedMemory();
        if (used !== undefined) this.labels('redis').set(used);
      }
    },
  });
  new client.Gauge({
    name: 'convscope_cache_limit_bytes',
    help: 'The configured bound of the tier (CACHE_MEMORY_MB, CACHE_DISK_MB).',
    labelNames: ['tier'],
    registers,
    collect() {
      this.reset();
      for (const i of cache.info()) if (i.limit !== undefined) this.labels(i.name).set(i.limit);
    },
  });
  new client.Gauge({
    name: 'convscope_cache_entries',
    help: 'Entries held by the tier.',
    labelNames: ['tier'],
    registers,
    collect() {
      this.reset();
      for (const i of cache.info()) if (i.entries !== undefined) this.labels(i.name).set(i.entries);
    },
  });
  if (cache.redis) {
    const redis = cache.redis;
    new client.Gauge({
      name: 'convscope_cache_redis_breaker_open',
      help: "1 while the Redis tier's circuit breaker is open (Redis failed: not asked until a background probe answers), else 0.",
      registers,
      collect() {
        this.set(redis.breaker === 'open' ? 1 : 0);
      },
    });
    new client.Counter({
      name: 'convscope_cache_redis_breaker_trips_total',
      help: "Times the Redis tier's circuit breaker opened.",
      registers,
      collect() {
        this.reset();
        this.inc(redis.trips);
      },
    });
    new client.Counter({
      name: 'convscope_cache_redis_skipped_total',
      help: 'Redis calls not made because the circuit breaker was open (answered as misses at once).',
      registers,
      collect() {
        this.reset();
        this.inc(redis.skipped);
      },
    });
  }
  new client.Counter({
    name: 'convscope_cache_computations_total',
    help: 'Results computed because no tier had them.',
    registers,
    collect() {
      this.reset();
      this.inc(cache.computed);
    },
  });

  new client.Counter({
    name: 'convscope_engine_runs_total',
    help: 'ORT runs.',
    registers,
    collect() {
      this.reset();
      this.inc(engine.stats.runs);
    },
  });
  new client.Counter({
    name: 'convscope_engine_items_total',
    help: 'Items (images, projections) carried by ORT runs.',
    registers,
    collect() {
      this.reset();
      this.inc(engine.stats.items);
    },
  });
  new client.Gauge({
    name: 'convscope_engine_session_bytes',
    help: 'Bytes of the compiled graphs whose ORT sessions are loaded (bounded by SESSION_MEMORY_MB).',
    registers,
    collect() {
      this.set(engine.sessionStats.bytes);
    },
  });
  new client.Counter({
    name: 'convscope_engine_session_evictions_total',
    help: 'Idle ORT sessions released to stay within SESSION_MEMORY_MB (loaded again when next needed).',
    registers,
    collect() {
      this.reset();
      this.inc(engine.stats.evictions);
    },
  });
  new client.Counter({
    name: 'convscope_engine_session_idle_releases_total',
    help: 'ORT sessions released after SESSION_IDLE_S without use (loaded again when next needed).',
    registers,
    collect() {
      this.reset();
      this.inc(engine.stats.idleReleases);
    },
  });
  const batchSize = new client.Histogram({
    name: 'convscope_engine_batch_size',
    help: 'Items per ORT run (the micro-batcher merges concurrent requests).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers,
  });
  const runSeconds = new client.Histogram({ name: 'convscope_engine_run_seconds', help: 'Time of one ORT run.', buckets: SECONDS, registers });
  const queueWait = new client.Histogram({
    name: 'convscope_engine_queue_wait_seconds',
    help: "An item's wait in a micro-batcher queue before its run starts.",
    buckets: SECONDS,
    registers,
  });
  const observer = {
    run(items: number, seconds: number) {
      batchSize.observe(items);
      runSeconds.observe(seconds);
    },
    queueWait(seconds: number) {
      queueWait.observe(seconds);
    },
  };
  engine.observers.push(observer);

  return {
    registry,
    route: async (_req, res) => {
      res.set('Content-Type', registry.contentType);
      res.set('Cache-Control', 'no-store');
      res.send(await registry.metrics());
    },
    close() {
      const i = engine.observers.indexOf(observer);
      if (i >= 0) engine.observers.splice(i, 1);
    },
  };
}
