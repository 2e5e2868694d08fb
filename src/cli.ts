#!/usr/bin/env node
/**
 * The command line, with progress bars; configuration comes from the same environment variables
 * as the server (MODELS_DIR, DATASETS_DIR, CACHE_DIR, …).
 *
 * `convscope index --model M --dataset D [--layers a,b] [--k 9]` builds a top-k index in this
 * process (same code and database as the server's buildIndex); Ctrl-C stops at the next
 * checkpoint and a later run resumes.
 *
 * With REDIS_URL and DATABASE_URL the job is queued in chunks (src/index/queue.ts), which this
 * process takes too unless INDEX_IN_API is off.
 *
 * `convscope worker` takes chunks of queued index jobs (src/worker.ts) until SIGTERM or Ctrl-C.
 *
 * `convscope atlas --model M --dataset D --out DIR` writes the whole-model atlas (service/atlas.ts)
 * as a static site: every Conv and ReLU unit's top-9 projections and patches, building the
 * index first if it is not built.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from './config';
import { defaultIndexLayers, JobInfo } from './index/jobs';
import { writeAtlas } from './service/atlas';
import { createServices } from './service/services';
import { log } from './log';
import { startWorker } from './worker';

const USAGE = `usage: convscope index --model <name> --dataset <name> [--layers <a,b,…>] [--k <9>]
       convscope atlas --model <name> --dataset <name> --out <dir>
       convscope worker`;

function bar(done: number, total: number, after: string): string {
  const width = 30;
  const filled = Math.round((total ? done / total : 1) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${after}`.trimEnd();
}

function jobBar(info: JobInfo): string {
  const rate = info.rate ? `${info.rate.toFixed(1)} img/s` : '';
  const eta = info.eta !== null && info.eta !== undefined ? `ETA ${Math.ceil(info.eta)} s` : '';
  return bar(info.imagesDone, info.imagesTotal, `${rate} ${eta}`);
}

/**
 * Writes a progress line: on a terminal, over itself (at most every 100 ms, and always the last);
 * otherwise one line per `step` (e.g. a layer, or a tenth of the work), so a log stays short.
 */
const tty = process.stderr.isTTY;
let shownAt = 0;
let shownStep: string | undefined;
const progress = (line: string, step = line, last = false) => {
  if (tty) {
    if (!last && performance.now() - shownAt < 100) return;
    shownAt = performance.now();
    process.stderr.write(`\r${line}\x1b[K`);
  } else if (step !== shownStep || last) {
    shownStep = step;
    process.stderr.write(`${line}\n`);
  }
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'worker' && rest.length === 0) return work();
  if (command !== 'index' && command !== 'atlas') {
    console.error(USAGE);
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      model: { type: 'string' },
      dataset: { type: 'string' },
      layers: { type: 'string' },
      k: { type: 'string', default: '9' },
      out: { type: 'string' },
    },
  });
  if (!values.model || !values.dataset || (command === 'atlas' && !values.out)) {
    console.error(USAGE);
    return 2;
  }
  const services = await createServices(loadConfig({ LOG_LEVEL: 'warn', ...process.env }));
  const model = services.registry.models.get(values.model);
  const dataset = services.datasets.datasets.get(values.dataset);
  if (!model) throw new Error(`no model "${values.model}"; models: ${services.registry.names().join(', ')}`);
  if (!dataset) throw new Error(`no dataset "${values.dataset}"; datasets: ${services.datasets.names().join(', ')}`);
  const layers = values.layers ? values.layers.split(',') : defaultIndexLayers(model);
  for (const l of layers) if (!model.layerByName.has(l)) throw new Error(`model "${model.name}" has no layer "${l}"`);
  services.jobs.on('progress', (info: JobInfo) => progress(jobBar(info), undefined, info.state !== 'RUNNING' && info.state !== 'QUEUED'));
  if (services.jobs.queue && services.config.indexInApi) services.jobs.work(services.config.indexWorkerChunks);
  const started = await services.jobs.start(model, dataset, layers, Number(values.k));
  let interrupted = false;
  process.on('SIGINT', () => {
    interrupted = true;
    void services.jobs.cancel(started.id);
  });
  const info = await services.jobs.wait(started.id);
  if (tty) process.stderr.write('\n');
  if (command === 'index' || info?.state !== 'DONE') {
    console.log(JSON.stringify({ id: info?.id, state: info?.state, images: info?.imagesDone, error: info?.error, failedImages: info?.failedImages }));
    await services.jobs.close();
    await services.engine.close();
    await services.inference.decodePool?.close();
    return info?.state === 'DONE' ? 0 : 1;
  }
  const start = performance.now();
  const report = await writeAtlas(services, model, dataset, values.out!, {
    k: Number(values.k),
    layers,
    cancelled: () => interrupted,
    onProgress: (p) =>
      progress(
        bar(p.unitsDone, p.unitsTotal, `units  ${p.layer}`),
        `${p.layer} ${Math.floor((10 * p.unitsDone) / p.unitsTotal)}`,
        p.unitsDone === p.unitsTotal,
      ),
  });
  if (tty) process.stderr.write('\n');
  console.log(JSON.stringify({ out: values.out, seconds: (performance.now() - start) / 1000, layers: report }));
  await services.engine.close();
  await services.inference.decodePool?.close();
  return 0;
}

/** `convscope worker`: until SIGTERM or SIGINT, then finishes its chunks; a second signal exits at once. */
async function work(): Promise<number> {
  const worker = await startWorker(loadConfig());
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal }, 'worker stopping: finishing its chunks');
  process.once(signal, () => process.exit(1));
  await worker.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`convscope: ${e.message}`);
    process.exit(1);
  },
);
