/**
 * Backend check for a GPU machine (run by hand; see bench/device.sh): every PyTorch reference
 * projection case on each backend, against the reference and against the cpu backend, then the
 * AlexNet relu5 timings of bench/relu5.ts per backend when an AlexNet export is given.
 *   node device.js <backend,backend,...> [alexnet-dir]
 * Imports nothing from the server (no sharp, no SQLite), so that one esbuild bundle of it runs
 * on a machine that has only node and onnxruntime-node. The runtime's worker thread loads that
 * same bundle, hence the isMainThread guard.
 */
import { isMainThread } from 'node:worker_threads';
import { Backend } from '../src/config';
import { Engine } from '../src/engine/engine';
import { project } from '../src/engine/projections';
import { openRuntime } from '../src/engine/runtime';
import { ModelRegistry } from '../src/registry/models';
import { FIXTURE_MODELS } from '../test/paths';
import { argmaxAbs, loadManifest, loadNpy, relativeError } from '../test/reference';
import { measure, report } from './relu5';

interface Outcome {
  backend: string;
  error?: string;
  cases?: number;
  passed?: number;
  /** Worst max|Δ|/max|ref| against PyTorch, and against the cpu backend's own result. */
  worstVsTorch?: number;
  worstVsCpu?: number;
  failures?: string[];
}

async function check(backend: Backend, cpuResults: Map<string, Float32Array>, alexnetDir?: string): Promise<Outcome> {
  let engine: Engine;
  try {
    engine = new Engine(await openRuntime(backend, 2), { maxBatch: 16, windowMs: 1 });
  } catch (e) {
    return { backend, error: (e as Error).message };
  }
  const outcome: Outcome = { backend, cases: 0, passed: 0, worstVsTorch: 0, worstVsCpu: 0, failures: [] };
  try {
    const registry = await ModelRegistry.load(FIXTURE_MODELS, engine.runtime);
    const manifest = loadManifest();
    for (const c of manifest.cases) {
      outcome.cases!++;
      const model = registry.models.get(c.model)!;
      const expected = loadNpy(c.expected).data;
      try {
        const r = await project(engine, model, {
          target: c.targetOutput, method: c.method, lrn: c.lrn, image: { key: c.model, data: loadNpy(manifest.models[c.model].input).data },
          channel: c.channel, seed: c.seed, position: c.position ?? undefined,
        });
        const vsTorch = relativeError(r.projection, expected);
        if (backend === 'cpu') cpuResults.set(c.id, r.projection);
        const vsCpu = cpuResults.has(c.id) ? relativeError(r.projection, cpuResults.get(c.id)!) : NaN;
        outcome.worstVsTorch = Math.max(outcome.worstVsTorch!, vsTorch);
        if (!Number.isNaN(vsCpu)) outcome.worstVsCpu = Math.max(outcome.worstVsCpu!, vsCpu);
        if (vsTorch <= 1e-4 && argmaxAbs(r.projection) === argmaxAbs(expected)) outcome.passed!++;
        else outcome.failures!.push(`${c.id}: ${vsTorch.toExponential(2)}`);
      } catch (e) {
        outcome.failures!.push(`${c.id}: ${(e as Error).message.slice(0, 200)}`);
      }
    }
    console.log(JSON.stringify(outcome));
    if (alexnetDir) {
      const alexnet = (await ModelRegistry.load(alexnetDir, engine.runtime)).models.get('alexnet');
      if (alexnet) report(`${backend}: AlexNet relu5, ms (img/s)`, await measure(engine, alexnet, [1, 8, 32]));
    }
  } finally {
    await engine.close();
  }
  return outcome;
}

if (isMainThread) void (async () => {
  const backends = (process.argv[2] ?? 'cpu').split(',') as Backend[];
  const cpuResults = new Map<string, Float32Array>();
  const outcomes: Outcome[] = [];
  for (const backend of backends) outcomes.push(await check(backend, cpuResults, process.argv[3]));
  console.log('\nsummary');
  for (const o of outcomes) {
    console.log(o.error ? `${o.backend}: did not start: ${o.error}` : `${o.backend}: ${o.passed}/${o.cases} reference cases pass; worst error vs PyTorch ${o.worstVsTorch!.toExponential(2)}, vs cpu ${o.worstVsCpu!.toExponential(2)}`);
  }
})();
