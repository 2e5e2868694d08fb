/**
 * Benchmark (run by hand): top-9 indexing throughput for thread counts, and the cost of a full Fig. 2 grid.
 *   /usr/bin/python3 bench/alexnet.py /tmp/alexnet/alexnet.onnx
 *   npm run build && node dist/bench/index.js /tmp/alexnet [images=256] [--ort 1,2] [--decode 0,1,2] [--rounds 3] [--grid]
 * Makes a synthetic dataset of 256×256 JPEGs, then for every combination of ORT threads
 * (ORT_THREADS) and decoding threads (DECODE_THREADS; 0 = decoding on the main thread), in fresh
 * services each, prints: the ORT throughput of the index graph alone (preprocessed tensors, batch
 * MAX_BATCH) before and after the job, the index job's throughput including decoding and
 * preprocessing, their ratio, and the CPU time per image of each part (which bounds the ratio
 * when the cores are shared). The combinations take turns, round after round, so the machine's
 * drift spreads over all of them; the summary gives each one's median ratio and range. With
 * --grid, then the time to render relu5's whole top-9 grid.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compileChannelMaxima } from '../src/compiler/forward';
import { loadConfig } from '../src/config';
import { defaultIndexLayers } from '../src/index/jobs';
import { DatasetRegistry } from '../src/registry/datasets';
import { startServer } from '../src/server';
import { createServices, Services } from '../src/service/services';
import { syntheticJpegs } from './synthetic';
import { median, REPEATS, timeIt, WARMUP } from './timing';

/** CPU time of the whole process (every thread) since the call, in ms, when the returned function is called. */
function cpuSince(): () => number {
  const start = process.cpuUsage();
  return () => {
    const d = process.cpuUsage(start);
    return (d.user + d.system) / 1000;
  };
}

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ort: { type: 'string', default: '2' },
    decode: { type: 'string', default: '0,1' },
    rounds: { type: 'string', default: '1' },
    grid: { type: 'boolean', default: false },
  },
});
const counts = (list: string) => list.split(',').map(Number);

interface Figures {
  ortRate: [number, number];
  indexRate: number;
  ratio: number;
  cpu: { ort: number; decode: number; job: number };
  decodedInPool: number;
}

async function close(s: Services): Promise<void> {
  await s.jobs.close();
  await s.engine.close();
  await s.inference.decodePool?.close();
  await s.cache.close();
  await s.jobs.store.close();
}

/** One index job over the dataset with `ortThreads` and `decodeThreads`, in services of their own (a fresh index store). */
async function measure(root: string, modelsDir: string, count: number, batch: number, ortThreads: number, decodeThreads: number, keep = false) {
  const s = await createServices(
    loadConfig({
      MODELS_DIR: modelsDir,
      DATASETS_DIR: path.join(root, 'datasets'),
      CACHE_DIR: fs.mkdtempSync(path.join(root, 'cache-')),
      LOG_LEVEL: 'warn',
      MAX_BATCH: String(batch),
      MAX_QUEUED_ITEMS: '100000',
      ORT_THREADS: String(ortThreads),
      DECODE_THREADS: String(decodeThreads),
    }),
  );
  const model = s.registry.models.get('alexnet')!;
  const dataset = s.datasets.datasets.get('synthetic')!;
  const layers = defaultIndexLayers(model);
  const tensors = layers.map((l) => model.layerByName.get(l)!.tensor);

  // ORT alone: the same graph on ready tensors, before and after the job (this machine's speed
  // drifts by 20 % over minutes: the job is compared with both).
  const loaded = await s.engine.load('bench', () => compileChannelMaxima(model.graph, model.shapes, tensors));
  const input = new s.engine.runtime.Tensor(
    'float32',
    new Float32Array(batch * 3 * 224 * 224).map((_, i) => Math.sin(i)),
    [batch, 3, 224, 224],
  );
  const ortAlone = async () => {
    const cpu = cpuSince();
    const ms = await timeIt(() => loaded.session.run({ input }));
    return { rate: (batch * 1000) / ms, cpuPerImage: cpu() / ((WARMUP + REPEATS) * batch) };
  };
  const before = await ortAlone();

  // Decoding alone, as the job does it (8-bit pixels at the input size, in the pool if there is one), 16 images at a time.
  const decodeCpu = cpuSince();
  for (let i = 0; i < count; i += 16) {
    await Promise.all(dataset.images.slice(i, i + 16).map((img) => s.inference.pixels(model, { sha256: img.name, bytes: s.datasets.read(dataset, img.name) })));
  }
  const decodeCpuPerImage = decodeCpu() / count;

  // Warm-up: a one-image dataset compiles and loads the index graph (as ORT alone had it loaded).
  await s.jobs.wait((await s.jobs.start(model, DatasetRegistry.load(path.join(root, 'datasets')).datasets.get('warm')!, layers, 9)).id);

  const decodedBefore = s.inference.decodePool?.decoded ?? 0;
  const t0 = performance.now();
  const jobCpu = cpuSince();
  const job = await s.jobs.start(model, dataset, layers, 9);
  const info = await s.jobs.wait(job.id);
  if (info?.state !== 'DONE') throw new Error(`the index job ended ${info?.state}: ${info?.error}`);
  const indexRate = (count * 1000) / (performance.now() - t0);
  const jobCpuPerImage = jobCpu() / count;
  const decodedInPool = (s.inference.decodePool?.decoded ?? 0) - decodedBefore;
  const after = await ortAlone();
  const figures: Figures = {
    ortRate: [before.rate, after.rate],
    indexRate,
    ratio: indexRate / ((before.rate + after.rate) / 2),
    cpu: { ort: (before.cpuPerImage + after.cpuPerImage) / 2, decode: decodeCpuPerImage, job: jobCpuPerImage },
    decodedInPool,
  };
  if (keep) return { figures, services: s, layers: layers.length };
  await close(s);
  return { figures, services: undefined, layers: layers.length };
}

(async () => {
  const modelsDir = positionals[0];
  const count = Number(positionals[1] ?? 256);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-index-'));
  const dir = path.join(root, 'datasets', 'synthetic');
  await syntheticJpegs(dir, count);
  const warm = path.join(root, 'datasets', 'warm');
  fs.mkdirSync(warm);
  fs.copyFileSync(path.join(dir, 'img-00000.jpg'), path.join(warm, 'img.jpg'));
  const batch = Number(process.env.MAX_BATCH ?? 16);
  const combinations = counts(options.ort).flatMap((ort) => counts(options.decode).map((decode) => ({ ort, decode })));
  const rounds = Number(options.rounds);
  const cores = os.availableParallelism();
  console.log(
    `AlexNet, every Conv and Relu, ${count} JPEGs 256×256, batch ${batch}, ${cores} cores, ${rounds} round(s) of ${combinations.length} combination(s)`,
  );

  const results = new Map<string, Figures[]>();
  let last: Services | undefined;
  for (let round = 0; round < rounds; round++) {
    for (const [i, { ort, decode }] of combinations.entries()) {
      const keep = options.grid && round === rounds - 1 && i === combinations.length - 1;
      const { figures: f, services, layers } = await measure(root, modelsDir, count, batch, ort, decode, keep);
      last = services;
      const name = `ORT ${ort} threads, decoding ${decode ? `in ${decode} worker thread(s)` : 'on the main thread'}`;
      results.set(name, [...(results.get(name) ?? []), f]);
      console.log(
        `round ${round + 1}, ${name} (${layers} layers): ORT alone ${f.ortRate[0].toFixed(1)} img/s before the job, ${f.ortRate[1].toFixed(1)} after; ` +
          `index job incl. decode ${f.indexRate.toFixed(1)} img/s (${f.decodedInPool} decoded in the pool); ratio ${f.ratio.toFixed(2)}`,
      );
      // Without a pool both cores are busy either way: the job's throughput is bounded by its CPU time per image.
      console.log(
        `  CPU ms per image: ORT ${f.cpu.ort.toFixed(1)}, decoding ${f.cpu.decode.toFixed(1)}, whole job ${f.cpu.job.toFixed(1)}; ` +
          `sharing ${cores} cores, the job can reach at most ${(f.cpu.ort / (f.cpu.ort + f.cpu.decode)).toFixed(2)} of ORT alone`,
      );
    }
  }
  console.log('summary: median (range) over the rounds');
  const range = (xs: number[], digits: number) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
  for (const [name, all] of results) {
    console.log(
      `  ${name}: index ${range(
        all.map((f) => f.indexRate),
        1,
      )} img/s, ORT alone ${range(
        all.flatMap((f) => f.ortRate),
        1,
      )} img/s, ratio ${range(
        all.map((f) => f.ratio),
        2,
      )}`,
    );
  }
  if (!last) {
    fs.rmSync(root, { recursive: true, force: true });
    return;
  }
  const s = last;

  // A full top-9 grid of relu5 (every channel), through the API's resolver path.
  const server = await startServer(
    loadConfig({
      MODELS_DIR: modelsDir,
      DATASETS_DIR: path.join(root, 'datasets'),
      CACHE_DIR: path.join(root, 'cache'),
      LOG_LEVEL: 'warn',
      PORT: '0',
      HOST: '127.0.0.1',
      MAX_QUERY_COST: '100000000',
      REQUEST_TIMEOUT_MS: '0',
      MAX_QUEUED_ITEMS: '100000',
    }),
    s,
  );
  const channels = 100; // one page of relu5 filters (MAX_PAGE_SIZE)
  const runs = s.engine.stats.runs;
  const t1 = performance.now();
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: `{ model(name: "alexnet") { layer(name: "/features/features.11/Relu") { topActivationsGrid(dataset: "synthetic", first: 100) } } }`,
    }),
  });
  const body = (await res.json()) as { errors?: unknown };
  const ms = performance.now() - t1;
  if (body.errors) console.log(JSON.stringify(body.errors));
  console.log(
    `top-9 grid of relu5 (${channels} channels × 9 projections): ${(ms / 1000).toFixed(1)} s, ${(ms / (channels * 9)).toFixed(1)} ms per projection, ${s.engine.stats.runs - runs} ORT runs`,
  );
  await server.close();
  fs.rmSync(root, { recursive: true, force: true });
})();
