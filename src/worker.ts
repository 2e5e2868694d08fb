/**
 * `convscope worker`: a process that takes chunks of queued index jobs (src/index/queue.ts) and
 * merges their top-k into the shared store; any number of them, on any machine, with the same
 * REDIS_URL, DATABASE_URL, MODELS_DIR and DATASETS_DIR contents as the API processes. It serves
 * only GET /healthz on PORT (liveness and readiness probes): 200 while it takes chunks and reaches
 * Redis, 503 otherwise. On SIGTERM it stops taking chunks, finishes (and merges) those it runs,
 * and exits.
 */
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { Config } from './config';
import { log } from './log';
import { publishJobProgress } from './pubsub';
import { createServices, Services } from './service/services';

export interface RunningWorker {
  /** Where /healthz is served. */
  url: string;
  services: Services;
  close(): Promise<void>;
}

export async function startWorker(config: Config): Promise<RunningWorker> {
  if (!config.redisUrl || !config.databaseUrl) {
    throw new Error('convscope worker needs REDIS_URL (the job queue) and DATABASE_URL (the shared index store)');
  }
  const services = await createServices(config);
  const queue = services.jobs.queue!;
  const stopProgress = publishJobProgress([services.jobs], config.redisUrl); // to every API replica's jobProgress subscribers
  services.jobs.work(config.indexWorkerChunks);
  const health = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/healthz') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(queue.ready ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: queue.ready, chunks: queue.counts }));
  });
  await new Promise<void>((resolve) => health.listen(config.port, config.host, resolve));
  const { port } = health.address() as AddressInfo;
  const url = `http://${config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host}:${port}`;
  log.info({ url: `${url}/healthz`, backend: config.backend, threads: config.threads, chunks: config.indexWorkerChunks }, 'convscope worker ready');
  return {
    url,
    services,
    async close() {
      await services.jobs.close(); // chunks running finish and merge
      await stopProgress();
      await new Promise((resolve) => health.close(resolve));
      await services.engine.close();
      await services.inference.decodePool?.close();
      await services.cache.close();
      await services.jobs.store.close();
    },
  };
}
