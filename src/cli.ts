#!/usr/bin/env node
/**
 * The command line: `convscope index --model M --dataset D [--layers a,b] [--k 9]` builds a top-k
 * index in this process (same code and database as the server's buildIndex), with a progress
 * bar; Ctrl-C stops at the next checkpoint and a later run resumes. Configuration comes from the
 * same environment variables as the server (MODELS_DIR, DATASETS_DIR, CACHE_DIR, …).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from './config';
import { defaultIndexLayers, JobInfo } from './index/jobs';
import { createServices } from './service/services';

const USAGE = `usage: convscope index --model <name> --dataset <name> [--layers <a,b,…>] [--k <9>]`;

function bar(info: JobInfo): string {
  const width = 30;
  const done = info.imagesTotal ? info.imagesDone / info.imagesTotal : 1;
  const filled = Math.round(done * width);
  const rate = info.rate ? `${info.rate.toFixed(1)} img/s` : '';
  const eta = info.eta !== null && info.eta !== undefined ? `ETA ${Math.ceil(info.eta)} s` : '';
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${info.imagesDone}/${info.imagesTotal} ${rate} ${eta}`.trimEnd();
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'index') {
    console.error(USAGE);
    return 2;
  }
  const { values } = parseArgs({ args: rest, options: { model: { type: 'string' }, dataset: { type: 'string' }, layers: { type: 'string' }, k: { type: 'string', default: '9' } } });
  if (!values.model || !values.dataset) {
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
  const tty = process.stderr.isTTY;
  services.jobs.on('progress', (info: JobInfo) => {
    if (tty) process.stderr.write(`\r${bar(info)}`);
    else process.stderr.write(`${bar(info)}\n`);
  });
  const started = await services.jobs.start(model, dataset, layers, Number(values.k));
  process.on('SIGINT', () => services.jobs.cancel(started.id));
  const info = await services.jobs.wait(started.id);
  if (tty) process.stderr.write('\n');
  console.log(JSON.stringify({ id: info?.id, state: info?.state, images: info?.imagesDone, error: info?.error }));
  await services.engine.close();
  return info?.state === 'DONE' ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`convscope: ${e.message}`);
    process.exit(1);
  },
);
