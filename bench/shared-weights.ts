/**
 * Benchmark (run by hand): AlexNet's graphs with their weights inside (SHARED_WEIGHTS=false) and
 * with the model's shared weights file (no pre-packing), in one process, rounds interleaved.
 *   /usr/bin/python3 bench/alexnet.py /tmp/alexnet/alexnet.onnx
 *   npm run build && node dist/bench/shared-weights.js /tmp/alexnet [rounds]
 * Prints, per graph (forward and DECONVNET projection to relu5 at batch 1 and 8, and to the
 * logits at batch 8), each round's median ms of both and their ratio (shared / inside).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { createServices } from '../src/service/services';
import { projectionRuns, TARGET } from './relu5';
import { timeIt } from './timing';

const dir = process.argv[2];
const rounds = Number(process.argv[3] ?? 4);

(async () => {
  const open = (shared: boolean) =>
    createServices(
      loadConfig({
        MODELS_DIR: dir,
        CACHE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-')),
        LOG_LEVEL: 'warn',
        ORT_THREADS: '2',
        SHARED_WEIGHTS: String(shared),
      }),
    );
  const variants = { inside: await open(false), shared: await open(true) };
  const runs: Record<string, Record<string, () => Promise<unknown>>> = {};
  for (const [name, s] of Object.entries(variants)) {
    const model = s.registry.models.get('alexnet')!;
    const logits = model.layers[model.layers.length - 1].name;
    const [relu1, relu8, logits8] = [
      await projectionRuns(s.engine, model, TARGET, 1),
      await projectionRuns(s.engine, model, TARGET, 8),
      await projectionRuns(s.engine, model, logits, 8),
    ];
    runs[name] = {
      'forward relu5, batch 1': relu1.forward,
      'projection relu5, batch 1': relu1.projection,
      'forward relu5, batch 8': relu8.forward,
      'projection relu5, batch 8': relu8.projection,
      'forward logits, batch 8': logits8.forward,
      'projection logits, batch 8': logits8.projection,
    };
  }
  const times: Record<string, { inside: number[]; shared: number[] }> = {};
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 ? (['shared', 'inside'] as const) : (['inside', 'shared'] as const)) {
      for (const [graph, run] of Object.entries(runs[name])) (times[graph] ??= { inside: [], shared: [] })[name].push(await timeIt(run, 7));
    }
  }
  const ms = (xs: number[]) => xs.map((x) => x.toFixed(0)).join('/');
  for (const [graph, { inside, shared }] of Object.entries(times)) {
    console.log(`${graph.padEnd(28)} inside ${ms(inside)} ms, shared ${ms(shared)} ms, ratio ${shared.map((x, i) => (x / inside[i]).toFixed(2)).join('/')}`);
  }
  for (const s of Object.values(variants)) {
    await s.engine.close();
    fs.rmSync(s.config.cacheDir, { recursive: true, force: true });
  }
  process.exit(0);
})();
