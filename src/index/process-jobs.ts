/**
 * Jobs run in this process: atlas jobs (a whole-model atlas written in the background,
 * service/atlas.ts) and feature visualization jobs (service/feature-visualization-job.ts), with
 * their progress as JobInfo 'progress' events, like index jobs (jobs.ts). What a job does is
 * given by the service layer; this keeps its state, runs it outside any request and reports it.
 * The state lives in this process only: a finished job's result is content-addressed (an atlas's
 * folder, a feature visualization's cache entry), which its mutation finds again after a restart;
 * an unfinished one is started again by its mutation.
 */
import { EventEmitter } from 'node:events';
import { detached } from '../engine/batcher';
import { log } from '../log';
import type { JobInfo, JobKind } from './jobs';
import type { JobState } from './store';

/** A job's identity: its id names its inputs, so an unchanged result is never made twice. */
export interface ProcessJobSpec {
  id: string;
  kind: Exclude<JobKind, 'INDEX'>;
  model: string;
  dataset: string;
  layers: string[];
  k: number;
  /** Where the finished result is served (an atlas's index.html), if known before it is made. */
  url: string | null;
}

/** Progress as the work reports it: an atlas, the index it waits for (images), then the units written; a feature visualization, its steps as units. */
export interface ProcessJobReport {
  imagesDone: number;
  imagesTotal: number;
  unitsDone: number;
  unitsTotal: number;
}

/**
 * The work of a job: resolves when its result is complete, with the result's URL where only the
 * result names it; `cancelled` is polled between units.
 */
export type ProcessJobWork = (report: (p: ProcessJobReport) => void, cancelled: () => boolean) => Promise<string | void>;

interface ProcessJobRun {
  spec: ProcessJobSpec;
  state: JobState;
  progress: ProcessJobReport;
  url: string | null;
  error: string | null;
  updatedAt: number;
  /** When the units began to be reported, and how many were done then: the rate counts from there. */
  unitsFrom: { at: number; done: number } | null;
  cancelled: boolean;
  done: Promise<void>;
}

function newRun(spec: ProcessJobSpec, state: JobState, progress: ProcessJobReport): ProcessJobRun {
  return { spec, state, progress, url: spec.url, error: null, updatedAt: Date.now(), unitsFrom: null, cancelled: false, done: Promise.resolve() };
}

/** Least time between two progress events of one job (the last one, DONE or not, is always sent). */
const PROGRESS_EVERY_MS = 200;

export class ProcessJobs extends EventEmitter {
  private readonly runs = new Map<string, ProcessJobRun>();

  constructor() {
    super();
    this.setMaxListeners(0);
  }

  /** Records a job whose result is complete as DONE. */
  finished(spec: ProcessJobSpec, unitsTotal: number): JobInfo {
    const known = this.runs.get(spec.id);
    if (known && known.state !== 'DONE') return this.info(spec.id)!;
    this.runs.set(spec.id, newRun(spec, 'DONE', { imagesDone: 0, imagesTotal: 0, unitsDone: unitsTotal, unitsTotal }));
    return this.info(spec.id)!;
  }

  /** Jobs of `kind` running now. */
  runningOf(kind: ProcessJobSpec['kind']): number {
    let n = 0;
    for (const run of this.runs.values()) if (run.spec.kind === kind && run.state === 'RUNNING') n++;
    return n;
  }

  /** Starts the job unless it is running or done (then returns it as it is). */
  start(spec: ProcessJobSpec, work: ProcessJobWork): JobInfo {
    const known = this.runs.get(spec.id);
    if (known && (known.state === 'QUEUED' || known.state === 'RUNNING' || known.state === 'DONE')) return this.info(spec.id)!;
    const run = newRun(spec, 'RUNNING', { imagesDone: 0, imagesTotal: 0, unitsDone: 0, unitsTotal: 0 });
    this.runs.set(spec.id, run);
    let sentAt = 0;
    const report = (p: ProcessJobReport) => {
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
        (url) => {
          run.state = run.cancelled ? 'CANCELLED' : 'DONE';
          if (url) run.url = url;
        },
        (e: Error) => {
          if (run.cancelled) {
            run.state = 'CANCELLED';
            return;
          }
          log.error({ job: spec.id, kind: spec.kind, err: e.message }, 'job failed');
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
      kind: spec.kind,
      model: spec.model,
      dataset: spec.dataset,
      layers: spec.layers,
      k: spec.k,
      state: run.state,
      imagesDone: p.imagesDone,
      imagesTotal: p.imagesTotal,
      failedImages: [], // those of an atlas's index are the index job's
      unitsDone: p.unitsDone,
      unitsTotal: p.unitsTotal,
      rate,
      eta,
      error: run.error,
      updatedAt: run.updatedAt,
      url: run.state === 'DONE' ? run.url : null,
    };
  }

  all(): JobInfo[] {
    return [...this.runs.keys()].map((id) => this.info(id)!);
  }

  /** Stops a running job at its next unit; its result is not written. */
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
