/**
 * Check (run by hand): every layer of torchvision's architectures serves and projects.
 *   /usr/bin/python3 scripts/export_zoo.py /tmp/zoo            # or name a few models
 *   npm run build && [SHARED_WEIGHTS=true] node dist/bench/zoo.js /tmp/zoo [model …] [--all-layers]
 * Per model: load time, layers, and for a sample of layers (first conv, layers of every op kind,
 * the last 4-D layer, the logits; every layer with --all-layers) one projection per method
 * (MAX seed) on a random image, timing the first (compile + session) and a second one.
 * Prints the failures with their error code and message, and the process's peak memory: VmHWM
 * (pages mapped by several sessions counted once per mapping) and PSS sampled every 50 ms.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { project } from '../src/engine/projections';
import type { Layer, Model } from '../src/model';
import { Method, METHODS as METHOD_MEANINGS } from '../src/vocabulary';
import { createServices } from '../src/service/services';
import { firstUnitRequest, syntheticInput } from './synthetic';

const args = process.argv.slice(2);
const dir = args[0];
const allLayers = args.includes('--all-layers');
const only = new Set(args.slice(1).filter((a) => !a.startsWith('--')));
/**
 * The process's proportional set size (Linux: smaps_rollup's Pss): resident memory with pages
 * mapped several times (a shared weights file that each session maps) counted once. VmHWM counts
 * such pages once per mapping.
 */
function pss(): number {
  const match = /^Pss:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'));
  return match ? Number(match[1]) * 1024 : process.memoryUsage().rss;
}
/** The largest PSS seen, sampled every 50 ms (the main thread is free while the runtime's worker runs). */
let peakPss = 0;
setInterval(() => (peakPss = Math.max(peakPss, pss())), 50).unref();

/** The process's peak resident memory so far (Linux: VmHWM). */
function peakRss(): number {
  const line = fs
    .readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return line ? Number(line.split(/\s+/)[1]) * 1024 : process.memoryUsage().rss;
}

const METHODS = Object.keys(METHOD_MEANINGS) as Method[];

function sample(model: Model): Layer[] {
  const layers = model.layers;
  if (allLayers) return layers;
  const picked = new Set<Layer>();
  picked.add(layers.find((l) => l.op === 'Conv')!);
  const byOp = new Map<string, Layer[]>();
  for (const l of layers) byOp.set(l.op, [...(byOp.get(l.op) ?? []), l]);
  for (const list of byOp.values()) picked.add(list[Math.floor(list.length / 2)]);
  const last4d = [...layers].reverse().find((l) => l.outputShape.length === 3);
  if (last4d) picked.add(last4d);
  picked.add(layers[layers.length - 1]);
  return [...picked].filter(Boolean).sort((a, b) => a.index - b.index);
}

(async () => {
  const models = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.onnx'))
    .map((f) => f.slice(0, -5))
    .filter((m) => only.size === 0 || only.has(m));
  let failures = 0;
  for (const name of models) {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-zoo-'));
    fs.symlinkSync(path.resolve(dir, `${name}.onnx`), path.join(work, `${name}.onnx`));
    if (fs.existsSync(path.join(dir, `${name}.json`))) fs.copyFileSync(path.join(dir, `${name}.json`), path.join(work, `${name}.json`));
    const started = Date.now();
    const s = await createServices(
      loadConfig({ MODELS_DIR: work, CACHE_DIR: path.join(work, 'cache'), LOG_LEVEL: 'silent', SHARED_WEIGHTS: process.env.SHARED_WEIGHTS ?? 'false' }),
    );
    const model = s.registry.models.get(name);
    if (!model) {
      console.log(`${name}: failed to load: ${s.registry.errors.map((e) => e.message).join('; ')}`);
      failures++;
      await s.engine.close();
      continue;
    }
    const kinds = new Set(model.layers.map((l) => l.op));
    console.log(
      `${name}: loaded in ${Date.now() - started} ms, ${model.layers.length} layers (${[...kinds].join(' ')})${model.forwardPerItem ? ', forward per item' : ''}`,
    );
    const image = syntheticInput(model, 'zoo', 1.5);
    for (const layer of sample(model)) {
      for (const method of METHODS) {
        const req = firstUnitRequest(model, layer, method, image);
        try {
          const t0 = Date.now();
          const first = await project(s.engine, model, req);
          const t1 = Date.now();
          await project(s.engine, model, { ...req, channel: 1 % model.layers.length });
          const t2 = Date.now();
          let max = 0;
          for (const v of first.projection) max = Math.max(max, Math.abs(v));
          console.log(`  ok   ${layer.name} [${layer.outputShape}] ${method}: first ${t1 - t0} ms, next ${t2 - t1} ms, max|p| ${max.toExponential(2)}`);
        } catch (e) {
          failures++;
          console.log(`  FAIL ${layer.name} [${layer.outputShape}] ${method}: ${(e as Error).message.split('\n')[0].slice(0, 300)}`);
          break;
        }
      }
    }
    console.log(
      `  ${name}: peak RSS ${(peakRss() / 2 ** 20).toFixed(0)} MB, peak PSS ${(peakPss / 2 ** 20).toFixed(0)} MB (sampled) for a ${(fs.statSync(path.join(dir, `${name}.onnx`)).size / 2 ** 20).toFixed(0)} MB model`,
    );
    await s.engine.close();
    fs.rmSync(work, { recursive: true, force: true }); // its graph cache: GBs for a large model
  }
  console.log(`${failures} failures`);
  process.exit(failures ? 1 : 0);
})();
