/**
 * Index jobs: run a model over a dataset and keep, per channel of the chosen layers, the top-k
 * images (topk.ts). Decoding of the next batch overlaps inference of the current one; at most
 * every checkpointMs the job checkpoints, so a job killed at any moment resumes from its last
 * checkpoint and ends with exactly the result of an uninterrupted run. An index whose inputs (the model's .onnx
 * sha256 and preprocessing, the dataset's fingerprint, layers, k) did not change is not rebuilt.
 * Processes that share a store (PostgreSQL) run each job once: the one holding its lease runs
 * it, renewing the lease at every checkpoint; the others wait and take over if that one dies.
 * With the job queue (queue.ts: REDIS_URL and DATABASE_URL) a job is instead split into chunks
 * that worker processes take from the queue, each merging its chunk's top-k into the job's
 * (runChunk); no process runs a whole job.
 */
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import { modelCacheId } from '../cache/keys';
import { detached } from '../engine/batcher';
import { Engine } from '../engine/engine';
import { Inference } from '../inference';
import { log } from '../log';
import { LayerKind } from '../onnx/ops';
import { Dataset, DatasetRegistry } from '../registry/datasets';
import type { Model } from '../model';
import type { ChunkTask, IndexQueue } from './queue';
import { IndexScan } from './scan';
import { FailedImage, IndexRow, IndexStore, JobState } from './store';

/** What a job makes: a top-k index (this file), a whole-model atlas or a feature visualization (process-jobs.ts). */
export const JOB_KINDS = {
  INDEX: 'a top-k index of some layers over a dataset',
  ATLAS: "a whole-model atlas: every unit's top-k as a static site",
  FEATURE_VISUALIZATION: "a unit's feature visualization (its units are the optimisation's steps)",
} as const;
export type JobKind = keyof typeof JOB_KINDS;

export interface JobInfo {
  id: string;
  kind: JobKind;
  model: string;
  dataset: string;
  layers: string[];
  k: number;
  state: JobState;
  imagesDone: number;
  imagesTotal: number;
  /** Atlas jobs: the units whose pages are written, of all; feature visualization jobs: the steps done, of all (null for index jobs). */
  unitsDone: number | null;
  unitsTotal: number | null;
  /** Images (index) or units (atlas) per second over this process's run of the job. */
  rate: number | null;
  /** Seconds left at that rate. */
  eta: number | null;
  error: string | null;
  /** Images left out of the index because they could not be read or decoded. */
  failedImages: FailedImage[];
  updatedAt: number;
  /** Once DONE, atlas jobs: the URL of the atlas's index.html; feature visualization jobs: of its PNG (else null). */
  url: string | null;
}

const UNFINISHED: ReadonlySet<JobState> = new Set(['QUEUED', 'RUNNING']);

/** The layers indexed by default: every Conv and ReLU output. */
export function defaultIndexLayers(model: Model): string[] {
  return model.layers.filter((l) => l.kind === LayerKind.CONV || l.kind === LayerKind.RELU).map((l) => l.name);
}

export function indexId(model: Model, dataset: Dataset, layers: string[], k: number): string {
  return createHash('sha256')
    .update(JSON.stringify([modelCacheId(model), dataset.fingerprint, [...layers].sort(), k]))
    .digest('hex')
    .slice(0, 32);
}

interface Running {
  cancelled: boolean;
  /** Whether this process holds the job's lease (else it waits for it). */
  owned: boolean;
  started: number;
  startImage: number;
  done: Promise<void>;
}

export class JobManager extends EventEmitter {
  private readonly running = new Map<string, Running>();
  /** Progress events in the order of the changes they report (each reads the store). */
  private progressEvents = Promise.resolve();
  /** This process, as the holder of job leases. */
  private readonly owner = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  constructor(
    readonly store: IndexStore,
    private readonly models: Map<string, Model>,
    private readonly datasets: DatasetRegistry,
    private readonly engine: Engine,
    private readonly inference: Inference,
    /** Images per ORT run. */
    private readonly chunk: number,
    /** Least time between checkpoints (each writes to the store). */
    private readonly checkpointMs: number,
    /** How long a job's lease lasts without a checkpoint: how soon another process takes over a job whose process died. */
    private readonly leaseMs: number,
    /** The job queue (REDIS_URL and DATABASE_URL): jobs are split into chunks that workers take. */
    readonly queue?: IndexQueue,
  ) {
    super();
    this.setMaxListeners(0);
  }

  /** Starts (or finds) the index of `layers` of `model` over `dataset`. Returns once it is recorded, not when it is done. */
  async start(model: Model, dataset: Dataset, layers: string[], k: number): Promise<JobInfo> {
    const id = indexId(model, dataset, layers, k);
    const row = await this.store.get(id);
    if (!row) {
      await this.store.create({
        id,
        model: model.name,
        modelId: modelCacheId(model),
        dataset: dataset.name,
        fingerprint: dataset.fingerprint,
        layers,
        k,
        state: 'QUEUED',
        nextImage: 0,
        total: dataset.images.length,
      });
    } else if (row.state === 'DONE' || this.running.has(id)) {
      return (await this.info(id))!;
    } else if (row.state === 'FAILED' || row.state === 'CANCELLED') {
      await this.store.setState(id, 'QUEUED');
    } // else QUEUED or RUNNING in another process: this one waits to take over should that one stop (acquire)
    if (this.queue) {
      // Chunks already queued are not queued twice; should Redis be down, workers queue them once it is back (IndexQueue.reconcile).
      await this.queue.enqueue(id).catch((e: Error) => log.warn({ job: id, err: e.message }, 'index job recorded but not queued yet: redis unavailable'));
    } else if (!this.running.has(id)) this.launch(id, model, dataset); // unless a concurrent start() launched it meanwhile
    return (await this.info(id))!;
  }

  /** Resumes jobs that a previous process left unfinished (QUEUED or RUNNING); with the queue, its workers do (IndexQueue.reconcile). */
  async resumeInterrupted(): Promise<void> {
    if (this.queue) return;
    for (const row of await this.store.all()) {
      if (!UNFINISHED.has(row.state) || this.running.has(row.id)) continue;
      const inputs = await this.inputs(row);
      if (!inputs) continue;
      log.info({ job: row.id, model: row.model, dataset: row.dataset, from: row.nextImage }, 'resuming index job');
      this.launch(row.id, inputs.model, inputs.dataset);
    }
  }

  /**
   * Takes chunks of queued jobs from the queue (this process is a worker) until close(), and
   * queues again the chunks of unfinished jobs that the queue lost (Redis restarted empty).
   */
  work(concurrency: number): void {
    if (!this.queue) throw new Error('no job queue: workers need REDIS_URL and DATABASE_URL');
    this.queue.work(
      concurrency,
      (task) => detached(() => this.runChunk(task)),
      async (task, e) => {
        log.error({ job: task.id, chunk: task.chunk, err: e.message }, 'index job failed');
        await this.store.setState(task.id, 'FAILED', e.message);
        await this.progress(task.id);
      },
    );
  }

  /**
   * Runs one chunk of a queued job and merges its top-k into the job's (once: a chunk taken
   * again after its worker died, or queued again after Redis lost it, merges nothing new).
   */
  async runChunk({ id, chunk }: ChunkTask): Promise<void> {
    const row = await this.store.get(id);
    if (!row || !UNFINISHED.has(row.state) || !row.chunkSize) return; // cancelled, finished, or forgotten meanwhile
    const { store, maxStarts } = this.queue!;
    if ((await store.mergedChunks(id)).has(chunk)) return; // queued again after Redis lost the queue, and merged meanwhile
    const from = chunk * row.chunkSize;
    const to = Math.min(row.total, from + row.chunkSize);
    const starts = await store.startChunk(id, chunk);
    if (starts > maxStarts) {
      // Thrown like any failure of the chunk: its last attempt fails the job with this message.
      throw new Error(
        `chunk ${chunk} (images ${from}–${to - 1}) was taken ${maxStarts} times (INDEX_CHUNK_MAX_STARTS) and never finished: it stops the workers that take it (a crash, or out of memory?)`,
      );
    }
    const inputs = await this.inputs(row);
    if (!inputs) return;
    const scan = new IndexScan(this.engine, this.inference, this.datasets, inputs.model, inputs.dataset, row.layers, this.chunk);
    log.info({ job: id, chunk, from, to }, 'index chunk started');
    const trackers = scan.trackers(row.k);
    const failed: FailedImage[] = [];
    for await (const batch of scan.batches(from, to)) {
      scan.offer(trackers, batch);
      failed.push(...batch.failed);
    }
    const merged = await store.mergeChunk(id, chunk, to - from, scan.changed(trackers), failed);
    log.info(
      { job: id, chunk, merged, failed: failed.map((f) => f.name) },
      merged ? 'index chunk merged' : 'index chunk not merged: merged before, or the job is no longer running',
    );
    if (merged) await this.progress(id);
  }

  /** The job's model and dataset, unless either changed or disappeared since it was started: then the job is FAILED. */
  private async inputs(row: IndexRow): Promise<{ model: Model; dataset: Dataset } | undefined> {
    const model = this.models.get(row.model);
    const dataset = this.datasets.datasets.get(row.dataset);
    if (model && dataset && modelCacheId(model) === row.modelId && dataset.fingerprint === row.fingerprint) return { model, dataset };
    await this.store.setState(
      row.id,
      'FAILED',
      "the model (its file, its preprocessing or convscope's decoding of images) or the dataset changed or disappeared before the job finished: run buildIndex again",
    );
    await this.progress(row.id);
    return undefined;
  }

  async cancel(id: string): Promise<JobInfo | undefined> {
    const run = this.running.get(id);
    if (run) run.cancelled = true;
    if (!run?.owned) {
      // Run by another process, if by any: it stops at its next checkpoint (the lease is released);
      // with the queue, chunks not yet merged find the job cancelled and merge nothing.
      const row = await this.store.get(id);
      if (row && UNFINISHED.has(row.state)) {
        await this.store.setState(id, 'CANCELLED');
        await this.progress(id); // to every replica's subscribers: no process running it will say so
      }
    }
    return this.info(id);
  }

  /** Waits for a job started in this process, or with the queue for the job to end wherever it runs. */
  async wait(id: string): Promise<JobInfo | undefined> {
    await this.running.get(id)?.done;
    for (;;) {
      const info = await this.info(id);
      if (!this.queue || !info || !UNFINISHED.has(info.state)) return info;
      await sleep(250);
    }
  }

  async info(id: string): Promise<JobInfo | undefined> {
    const row = await this.store.get(id);
    if (!row) return undefined;
    const run = this.running.get(id);
    let rate: number | null = null;
    let eta: number | null = null;
    if (run && row.nextImage > run.startImage) {
      rate = (row.nextImage - run.startImage) / ((Date.now() - run.started) / 1000);
      eta = (row.total - row.nextImage) / rate;
    }
    return {
      id,
      kind: 'INDEX',
      model: row.model,
      dataset: row.dataset,
      layers: row.layers,
      k: row.k,
      state: row.state,
      imagesDone: row.nextImage,
      imagesTotal: row.total,
      unitsDone: null,
      unitsTotal: null,
      rate,
      eta,
      error: row.error,
      failedImages: await this.store.failedImages(id),
      updatedAt: row.updatedAt,
      url: null,
    };
  }

  async all(): Promise<JobInfo[]> {
    return Promise.all((await this.store.all()).map(async (r) => (await this.info(r.id))!));
  }

  /** The finished index of `model` over `dataset` that covers `layer`, if any (newest first). */
  async finished(model: Model, dataset: Dataset, layer: string): Promise<IndexRow | undefined> {
    return (await this.store.all())
      .reverse()
      .find((r) => r.state === 'DONE' && r.modelId === modelCacheId(model) && r.fingerprint === dataset.fingerprint && r.layers.includes(layer));
  }

  /** Stops this process's runs at their next checkpoint, and its chunks of queued jobs once they are merged. */
  async close(): Promise<void> {
    for (const run of this.running.values()) run.cancelled = true;
    await Promise.all([...this.running.values()].map((r) => r.done));
    await this.queue?.close();
  }

  /** Emits the job's current info as a 'progress' event, after the events before it. */
  private progress(id: string): Promise<void> {
    this.progressEvents = this.progressEvents.then(async () => {
      this.emit('progress', await this.info(id));
    });
    return this.progressEvents.catch((e: Error) => log.warn({ job: id, err: e.message }, 'no progress event: the index store failed'));
  }

  /** Runs the job in the background; registers it as running at once (before any await). */
  private launch(id: string, model: Model, dataset: Dataset): void {
    const run: Running = { cancelled: false, owned: false, started: Date.now(), startImage: 0, done: Promise.resolve() };
    this.running.set(id, run);
    // Outside the request that started it: neither its client leaving nor its time limit nor the
    // requests' queue bound may stop a job (engine/batcher.ts); it is bounded by its chunks.
    run.done = detached(() => this.execute(id, model, dataset, run))
      .catch(async (e: Error) => {
        log.error({ job: id, err: e.message }, 'index job failed');
        await this.store.setState(id, 'FAILED', e.message);
      })
      .catch((e: Error) => log.error({ job: id, err: e.message }, 'the index store failed'))
      .finally(() => {
        this.running.delete(id);
        return this.progress(id);
      });
  }

  /**
   * Waits until this process holds the job's lease: at once, unless another live process runs the
   * job; then until that one's lease runs out (it died: this one takes over) or the job ends
   * there (false), or this run is cancelled (false).
   */
  private async acquire(id: string, run: Running): Promise<boolean> {
    for (let waited = false, dead: string | undefined; ; waited = true) {
      if (run.cancelled) return false;
      if (await this.store.claim(id, this.owner, Date.now() + this.leaseMs, dead)) return (run.owned = true);
      const row = await this.store.get(id);
      if (!row || (row.state !== 'QUEUED' && row.state !== 'RUNNING')) return false;
      // A process of this machine that died (the embedded default after a crash) is not waited for.
      if (row.owner && row.owner !== dead && diedHere(row.owner)) {
        dead = row.owner;
        continue;
      }
      if (!waited) log.info({ job: id }, 'index job runs in another process; waiting to take over should it stop');
      for (const until = Date.now() + this.leaseMs / 3; Date.now() < until && !run.cancelled;) await sleep(100);
    }
  }

  private async execute(id: string, model: Model, dataset: Dataset, run: Running): Promise<void> {
    if (!(await this.acquire(id, run))) return;
    const row = (await this.store.get(id))!;
    run.startImage = row.nextImage;
    const scan = new IndexScan(this.engine, this.inference, this.datasets, model, dataset, row.layers, this.chunk);
    const trackers = scan.trackers(row.k);
    for (const saved of await this.store.tops(row.id)) {
      trackers[row.layers.indexOf(saved.layer)].offer(saved.channel, saved.value, saved.image, saved.y, saved.x);
    }
    for (const t of trackers) t.clearChanged(); // restored, not changed
    await this.store.setState(row.id, 'RUNNING');
    await this.progress(row.id);

    let next = row.nextImage;
    let failed: FailedImage[] = [];
    let savedAt = Date.now();
    // A checkpoint writes every channel whose top-k changed since the last one, the images that
    // failed and the progress, in one transaction (so they always agree), and renews the lease;
    // at most every checkpointMs, at least thrice a lease. False: the lease is lost (the job was
    // cancelled, or this process stalled longer than a lease and another took over): stop, saving nothing.
    const checkpointEvery = Math.min(this.checkpointMs, this.leaseMs / 3);
    const save = async () => {
      if (!(await this.store.checkpoint(row.id, this.owner, Date.now() + this.leaseMs, next, scan.changed(trackers), failed))) {
        log.warn({ job: row.id }, 'index job lost its lease (cancelled, or taken over by another process); stopping');
        return false;
      }
      failed = [];
      savedAt = Date.now();
      void this.progress(row.id);
      return true;
    };
    for await (const batch of scan.batches(next, row.total)) {
      if (run.cancelled) {
        if (await save()) await this.store.setState(row.id, 'CANCELLED');
        return; // the batches in flight are recomputed on resume
      }
      scan.offer(trackers, batch);
      failed.push(...batch.failed);
      next = batch.from + batch.results.length;
      if (Date.now() - savedAt >= checkpointEvery && !(await save())) return;
    }
    if (await save()) await this.store.setState(row.id, 'DONE');
  }
}

/** Whether `owner` (host:pid:random) names a process of this machine that no longer exists. */
function diedHere(owner: string): boolean {
  const parts = owner.split(':');
  const pid = Number(parts.at(-2));
  if (parts.slice(0, -2).join(':') !== os.hostname() || !Number.isInteger(pid)) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
