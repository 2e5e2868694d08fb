/**
 * Backend check (run by hand; on a GPU machine through bench/device.sh): every PyTorch reference
 * projection case (test/fixtures/reference and test/fixtures/modern/reference) on each backend,
 * GPU backends with CPU fallback disabled, against the reference and against the cpu backend;
 * then, given a folder with alexnet.onnx and resnet50.onnx (scripts/export_zoo.py), images/s of
 * the forward pass and of a projection from the deepest ReLU per backend at batch 1, 8 and 64,
 * and each GPU backend's speed-up over cpu. Exits 1 if a backend fails to start or a case fails.
 *   npm run build && [ORT_THREADS=n REPEATS=n WARMUP=n] node dist/bench/device.js <backend,backend,...> [zoo-dir]
 * Imports nothing from the server (no SQLite; sharp is stubbed in the pack), so that one esbuild
 * bundle of it runs on a machine that has only node and onnxruntime-node. The runtime's worker
 * thread loads that same bundle: the isMainThread guard below, and the import of
 * worker-runtime, whose module code answers the main thread's requests there.
 */
import { isMainThread } from 'node:worker_threads';
import '../src/engine/worker-runtime';
import { Backend } from '../src/config';
import { Engine } from '../src/engine/engine';
import { project } from '../src/engine/projections';
import { CPU_FALLBACK_REFUSED, openRuntime, Runtime } from '../src/engine/runtime';
import { ModelRegistry } from '../src/registry/models';
import { argmaxAbs, caseRequest, loadManifest, loadNpy, REFERENCE_SUITES, relativeError } from '../test/reference';
import { deepestRelu, measure, report, Row } from './relu5';

const TOLERANCE = 1e-4;
const TIMED = ['alexnet', 'resnet50'];
const BATCHES = [1, 8, 64];
/** Intra-op threads per session (ORT_THREADS, default 2): give the cpu baseline the machine's cores. */
const THREADS = Number(process.env.ORT_THREADS ?? 2);

interface Outcome {
  backend: string;
  error?: string;
  cases: number;
  passed: number;
  /** Of the passed cases, those that ran only with ORT's CPU fallback (GPU backends). */
  withFallback: string[];
  /** Worst max|Δ|/max|ref| against PyTorch, and against the cpu backend's own result. */
  worstVsTorch: number;
  worstVsCpu: number;
  failures: string[];
  seconds: number;
  timings: Map<string, Row[]>;
}

/**
 * The models, loaded once on a cpu runtime: loading probes each model's shapes with every
 * activation and shape value as an output, int64 shape arithmetic included, which GPU providers
 * leave to the CPU. The graphs under test are the projections, run on each backend's engines.
 */
async function loadSuites(runtime: Runtime) {
  return Promise.all(REFERENCE_SUITES.map(async (s) => ({ ...s, registry: await ModelRegistry.load(s.models, runtime), manifest: loadManifest(s.reference) })));
}
type Suites = Awaited<ReturnType<typeof loadSuites>>;

/**
 * Each case on `backend`: GPU backends first with the CPU fallback disabled, and a case the
 * provider cannot run alone again with it, as the server runs it. Timings with the fallback.
 */
async function check(backend: Backend, suites: Suites, cpuResults: Map<string, Float32Array>, zoo?: ModelRegistry): Promise<Outcome> {
  const outcome: Outcome = { backend, cases: 0, passed: 0, withFallback: [], worstVsTorch: 0, worstVsCpu: 0, failures: [], seconds: 0, timings: new Map() };
  const gpu = backend === 'cuda' || backend === 'webgpu';
  const engines: Engine[] = [];
  try {
    for (const cpuFallback of gpu ? [false, true] : [true])
      engines.push(new Engine(await openRuntime(backend, THREADS, { cpuFallback }), { maxBatch: 16, windowMs: 1 }));
  } catch (e) {
    for (const engine of engines) await engine.close(); // one at a time (test/webgpu.test.ts says why)
    return { ...outcome, error: (e as Error).message };
  }
  const [strict, server] = [engines[0], engines[engines.length - 1]];
  const start = performance.now();
  try {
    for (const { registry, manifest, reference } of suites) {
      for (const c of manifest.cases) {
        outcome.cases++;
        const model = registry.models.get(c.model)!;
        const expected = loadNpy(c.expected, reference).data;
        const request = caseRequest(c, manifest, reference);
        try {
          let r = await project(strict, model, request).catch((e: Error) => e);
          if (r instanceof Error && strict !== server && CPU_FALLBACK_REFUSED.test(r.message)) {
            outcome.withFallback.push(c.id);
            r = await project(server, model, request);
          }
          if (r instanceof Error) throw r;
          const vsTorch = relativeError(r.projection, expected);
          if (backend === 'cpu') cpuResults.set(c.id, r.projection);
          const cpu = cpuResults.get(c.id);
          if (cpu) outcome.worstVsCpu = Math.max(outcome.worstVsCpu, relativeError(r.projection, cpu));
          outcome.worstVsTorch = Math.max(outcome.worstVsTorch, vsTorch);
          if (vsTorch <= TOLERANCE && argmaxAbs(r.projection) === argmaxAbs(expected)) outcome.passed++;
          else outcome.failures.push(`${c.id}: ${vsTorch.toExponential(2)}`);
        } catch (e) {
          outcome.failures.push(`${c.id}: ${(e as Error).message.slice(0, 300)}`);
        }
      }
    }
    outcome.seconds = (performance.now() - start) / 1000;
    console.log(JSON.stringify({ ...outcome, timings: undefined }));
    if (zoo) {
      for (const name of TIMED) {
        const model = zoo.models.get(name);
        if (!model) continue;
        const target = deepestRelu(model).name;
        const rows = await measure(server, model, BATCHES, target);
        outcome.timings.set(name, rows);
        report(`${backend}: ${name} to ${target}, ms (img/s)`, rows);
      }
    }
  } finally {
    for (const engine of engines) await engine.close(); // one at a time (test/webgpu.test.ts says why)
  }
  return outcome;
}

/** images/s of a row's forward pass and projection. */
const rates = (r: Row) => [(r.batch * 1000) / r.forward, (r.batch * 1000) / r.projection];

if (isMainThread)
  void (async () => {
    const backends = (process.argv[2] ?? 'cpu').split(',') as Backend[];
    const cpuResults = new Map<string, Float32Array>();
    const loader = await openRuntime('cpu', 2);
    const suites = await loadSuites(loader);
    const zoo = process.argv[3] ? await ModelRegistry.load(process.argv[3], loader) : undefined;
    const outcomes: Outcome[] = [];
    for (const backend of backends) outcomes.push(await check(backend, suites, cpuResults, zoo));
    await loader.close();
    console.log('\nsummary');
    for (const o of outcomes) {
      if (o.error) {
        console.log(`${o.backend}: did not start: ${o.error}`);
        continue;
      }
      const alone =
        o.withFallback.length > 0 ? ` (${o.cases - o.withFallback.length} with the CPU fallback disabled; with it: ${o.withFallback.join(', ')})` : '';
      console.log(
        `${o.backend}: ${o.passed}/${o.cases} reference cases within ${TOLERANCE} of PyTorch in ${o.seconds.toFixed(0)} s${alone}; ` +
          `worst error vs PyTorch ${o.worstVsTorch.toExponential(2)}, vs cpu ${o.worstVsCpu.toExponential(2)}`,
      );
      for (const f of o.failures) console.log(`  failed ${f}`);
    }
    const cpu = outcomes.find((o) => o.backend === 'cpu');
    for (const o of outcomes.filter((o) => o !== cpu && o.timings.size > 0)) {
      for (const [name, rows] of o.timings) {
        const base = cpu?.timings.get(name);
        const ratio = (r: Row, i: number) => {
          const b = base?.find((x) => x.batch === r.batch);
          return b ? ` (${(rates(r)[i] / rates(b)[i]).toFixed(1)}× cpu)` : '';
        };
        for (const r of rows) {
          const [f, p] = rates(r);
          console.log(`${o.backend} ${name} batch ${r.batch}: forward ${f.toFixed(1)} img/s${ratio(r, 0)}, projection ${p.toFixed(1)} img/s${ratio(r, 1)}`);
        }
      }
    }
    if (outcomes.some((o) => o.error || o.failures.length > 0)) process.exitCode = 1;
  })();
