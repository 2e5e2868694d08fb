/**
 * Atlas jobs: a whole-model atlas (service/atlas.ts) written in the background, with its
 * progress as JobInfo 'progress' events, like index jobs (jobs.ts). What an atlas job does is
 * given by the service layer; this keeps its state, runs it outside any request and reports it.
 * The state lives in this process: a finished atlas is its folder, which buildAtlas finds again
 * after a restart; an unfinished one is started again by buildAtlas (its projections are then
 * mostly in the result cache).
 */
import { EventEmitter } from 'node:events';
import { detached } from '../engine/batcher';
import { log } from '../log';
import type { JobInfo } from './jobs';
import type { JobState } from './store';

/** An atlas job's identity: its id names its inputs, so an unchanged atlas is never written twice. */
export interface AtlasSpec {
  id: string;
  model: string;
  dataset: string;
  layers: string[];
  k: number;
  /** Where the finished atlas is served (its index.html). */
  url: string;
}

/** Progress as the work reports it: the index it waits for (images), then the units written. */
export interface AtlasReport {
  imagesDone: number;
  imagesTotal: number;
  unitsDone: number;
  unitsTotal: number;
}

/** The work of an atlas job: resolves when the atlas is complete; `cancelled` is polled between units. */
export type AtlasWork = (report: (p: AtlasReport) => void, cancelled: () => boolean) => Promise<void>;

interface AtlasRun {
  spec: AtlasSpec;
  state: JobState;
  progress: AtlasReport;
  error: string | null;
  updatedAt: number;
  /** When the units began to be reported, and how many were done then: the rate counts from there. */
  unitsFrom: { at: number; done: number } | null;
  cancelled: boolean;
  done: Promise<void>;
}

/** Least time between two progress events of one job (the last one, DONE or not, is always sent). */
const PROGRESS_EVERY_MS = 200;

export class AtlasJobs extends EventEmitter {
  private readonly runs = new Map<string, AtlasRun>();

  constructor() {
    super();
    this.setMaxListeners(0);
  }

  /** Records an atlas whose folder is complete as a DONE job. */
  finished(spec: AtlasSpec, unitsTotal: number): JobInfo {
    const known = this.runs.get(spec.id);
    if (known && known.state !== 'DONE') return this.info(spec.id)!;
    const progress = { imagesDone: 0, imagesTotal: 0, unitsDone: unitsTotal, unitsTotal };
    this.runs.set(spec.id, { spec, state: 'DONE', progress, error: null, updatedAt: Date.now(), unitsFrom: null, cancelled: false, done: Promise.resolve() });
    return this.info(spec.id)!;
  }

  /** Starts the job unless it is running or done (then returns it as it is). */
  start(spec: AtlasSpec, work: AtlasWork): JobInfo {
    const known = this.runs.get(spec.id);
    if (known && (known.state === 'QUEUED' || known.state === 'RUNNING' || known.state === 'DONE')) return this.info(spec.id)!;
    const run: AtlasRun = {
      spec,
      state: 'RUNNING',
      progress: { imagesDone: 0, imagesTotal: 0, unitsDone: 0, unitsTotal: 0 },
      error: null,
      updatedAt: Date.now(),
      unitsFrom: null,
      cancelled: false,
      done: Promise.resolve(),
    };
    this.runs.set(spec.id, run);
    let sentAt = 0;
    const report = (p: AtlasReport) => {
      run.progress = p;
      run.updatedAt = Date.now();
      if (!run.unitsFrom && p.unitsTotal > 0) run.unitsFrom = { at: performance.now(), done: p.unitsDone };
      if (run.updatedAt - sentAt >= PROGRESS_EVERY_MS) {
        sentAt = run.updatedAt;
        this.progress(spec.id);
      }
    };
    // Outside the request that started it: neither its client leaving nor its time limit nor the
    // requests' queue bound may stop it (engine/batcher.ts).
    run.done = detached(() => work(report, () => run.cancelled))
      .then(
        () => {
          run.state = run.cancelled ? 'CANCELLED' : 'DONE';
        },
        (e: Error) => {
          if (run.cancelled) {
            run.state = 'CANCELLED';
            return;
          }
          log.error({ job: spec.id, err: e.message }, 'atlas job failed');
          run.state = 'FAILED';
          run.error = e.message;
        },
      )
      .finally(() => {
        run.updatedAt = Date.now();
        this.progress(spec.id);
      });
    this.progress(spec.id);
    return this.info(spec.id)!;
  }

  info(id: string): JobInfo | undefined {
    const run = this.runs.get(id);
    if (!run) return undefined;
    const { spec, progress: p } = run;
    let rate: number | null = null;
    let eta: number | null = null;
    if (run.state === 'RUNNING' && run.unitsFrom && p.unitsDone > run.unitsFrom.done) {
      rate = (p.unitsDone - run.unitsFrom.done) / ((performance.now() - run.unitsFrom.at) / 1000);
      eta = (p.unitsTotal - p.unitsDone) / rate;
    }
    return {
      id,
      kind: 'ATLAS',
      model: spec.model,
      dataset: spec.dataset,
      layers: spec.layers,
      k: spec.k,
      state: run.state,
      imagesDone: p.imagesDone,
      imagesTotal: p.imagesTotal,
      failedImages: [], // those of its index are the index job's
      unitsDone: p.unitsDone,
      unitsTotal: p.unitsTotal,
      rate,
      eta,
      error: run.error,
      updatedAt: run.updatedAt,
      url: run.state === 'DONE' ? spec.url : null,
    };
  }

  all(): JobInfo[] {
    return [...this.runs.keys()].map((id) => this.info(id)!);
  }

  /** Stops a running job at its next unit; its folder is not written. */
  cancel(id: string): JobInfo | undefined {
    const run = this.runs.get(id);
    if (run && run.state === 'RUNNING') run.cancelled = true;
    return this.info(id);
  }

  async wait(id: string): Promise<JobInfo | undefined> {
    await this.runs.get(id)?.done;
    return this.info(id);
  }

  async close(): Promise<void> {
    for (const run of this.runs.values()) run.cancelled = true;
    await Promise.all([...this.runs.values()].map((r) => r.done));
  }

  private progress(id: string): void {
    this.emit('progress', this.info(id));
  }
}
