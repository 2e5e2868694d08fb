/**
 * Benchmark (run by hand): top-9 indexing throughput and the cost of a full Fig. 2 grid.
 *   /usr/bin/python3 bench/alexnet.py /tmp/alexnet/alexnet.onnx
 *   npm run build && node dist/bench/index.js /tmp/alexnet [images=256]
 * Makes a synthetic dataset of 256×256 JPEGs, then prints: the ORT throughput of the index graph
 * alone (preprocessed tensors, batch MAX_BATCH), the index job's throughput including decoding
 * and preprocessing, their ratio, the CPU time per image of each part (which bounds the ratio
 * when the cores are shared), and the time to render relu5's whole top-9 grid.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { compileChannelMaxima } from '../src/compiler/forward';
import { loadConfig } from '../src/config';
import { defaultIndexLayers } from '../src/index/jobs';
import { DatasetRegistry } from '../src/registry/datasets';
import { startServer } from '../src/server';
import { createServices } from '../src/service/services';
import { REPEATS, timeIt, WARMUP } from './timing';

/** CPU time of the whole process (every thread) since the call, in ms, when the returned function is called. */
function cpuSince(): () => number {
  const start = process.cpuUsage();
  return () => {
    const d = process.cpuUsage(start);
    return (d.user + d.system) / 1000;
  };
}

(async () => {
  const modelsDir = process.argv[2];
  const count = Number(process.argv[3] ?? 256);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-index-'));
  const dir = path.join(root, 'datasets', 'synthetic');
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const raw = Buffer.alloc(256 * 256 * 3);
    for (let p = 0; p < raw.length; p++) raw[p] = (p * (i + 7) * 2654435761) >>> 24;
    fs.writeFileSync(path.join(dir, `img-${String(i).padStart(5, '0')}.jpg`), await sharp(raw, { raw: { width: 256, height: 256, channels: 3 } }).jpeg().toBuffer());
  }
  const batch = Number(process.env.MAX_BATCH ?? 16);
  const s = await createServices(loadConfig({ MODELS_DIR: modelsDir, DATASETS_DIR: path.join(root, 'datasets'), CACHE_DIR: path.join(root, 'cache'), LOG_LEVEL: 'warn', MAX_BATCH: String(batch), MAX_QUEUED_ITEMS: '100000' }));
  const model = s.registry.models.get('alexnet')!;
  const dataset = s.datasets.datasets.get('synthetic')!;
  const layers = defaultIndexLayers(model);
  const tensors = layers.map((l) => model.layerByName.get(l)!.tensor);

  // ORT alone: the same graph on ready tensors, before and after the job (this machine's speed
  // drifts by 20 % over minutes: the job is compared with both).
  const loaded = await s.engine.load('bench', () => compileChannelMaxima(model.graph, model.shapes, tensors));
  const input = new s.engine.runtime.Tensor('float32', new Float32Array(batch * 3 * 224 * 224).map((_, i) => Math.sin(i)), [batch, 3, 224, 224]);
  const ortAlone = async () => {
    const cpu = cpuSince();
    const ms = await timeIt(() => loaded.session.run({ input }));
    return { rate: (batch * 1000) / ms, cpuPerImage: cpu() / ((WARMUP + REPEATS) * batch) };
  };
  const before = await ortAlone();

  // Decoding alone, as the job does it (8-bit pixels at the input size), 16 images at a time.
  const decodeCpu = cpuSince();
  for (let i = 0; i < count; i += 16) {
    await Promise.all(
      dataset.images.slice(i, i + 16).map((img) => s.inference.pixels(model, { sha256: img.name, bytes: s.datasets.read(dataset, img.name) })),
    );
  }
  const decodeCpuPerImage = decodeCpu() / count;

  // Warm-up: a one-image dataset compiles and loads the index graph (as ORT alone had it loaded).
  const warm = path.join(root, 'datasets', 'warm');
  fs.mkdirSync(warm);
  fs.copyFileSync(path.join(dir, 'img-00000.jpg'), path.join(warm, 'img.jpg'));
  await s.jobs.wait((await s.jobs.start(model, DatasetRegistry.load(path.join(root, 'datasets')).datasets.get('warm')!, layers, 9)).id);

  const t0 = performance.now();
  const jobCpu = cpuSince();
  const job = await s.jobs.start(model, dataset, layers, 9);
  const info = await s.jobs.wait(job.id);
  const indexRate = (count * 1000) / (performance.now() - t0);
  const jobCpuPerImage = jobCpu() / count;
  const after = await ortAlone();
  const ortRate = (before.rate + after.rate) / 2;
  const ortCpuPerImage = (before.cpuPerImage + after.cpuPerImage) / 2;
  console.log(`AlexNet, ${layers.length} layers (every Conv and Relu), ${count} JPEGs 256×256, batch ${batch}, ${s.config.threads} ORT threads`);
  console.log(`ORT alone: ${before.rate.toFixed(1)} img/s before the job, ${after.rate.toFixed(1)} after (medians of ${REPEATS}); index job incl. decode: ${indexRate.toFixed(1)} img/s (${info?.state}); ratio ${(indexRate / ortRate).toFixed(2)}`);
  // Both cores are busy either way: the job's throughput is bounded by its CPU time per image.
  const cores = os.availableParallelism();
  console.log(
    `CPU ms per image: ORT ${ortCpuPerImage.toFixed(1)}, decoding ${decodeCpuPerImage.toFixed(1)}, whole job ${jobCpuPerImage.toFixed(1)}; ` +
      `on ${cores} cores the job can reach at most ${(ortCpuPerImage / (ortCpuPerImage + decodeCpuPerImage)).toFixed(2)} of ORT alone`,
  );

  // A full top-9 grid of relu5 (every channel), through the API's resolver path.
  const server = await startServer(loadConfig({ MODELS_DIR: modelsDir, DATASETS_DIR: path.join(root, 'datasets'), CACHE_DIR: path.join(root, 'cache'), LOG_LEVEL: 'warn', PORT: '0', HOST: '127.0.0.1', MAX_QUERY_COST: '100000000', REQUEST_TIMEOUT_MS: '0', MAX_QUEUED_ITEMS: '100000' }), s);
  const channels = 100; // one page of relu5 filters (MAX_PAGE_SIZE)
  const runs = s.engine.stats.runs;
  const t1 = performance.now();
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: `{ model(name: "alexnet") { layer(name: "/features/features.11/Relu") { topActivationsGrid(dataset: "synthetic", first: 100) } } }` }),
  });
  const body = (await res.json()) as { errors?: unknown };
  const ms = performance.now() - t1;
  if (body.errors) console.log(JSON.stringify(body.errors));
  console.log(`top-9 grid of relu5 (${channels} channels × 9 projections): ${(ms / 1000).toFixed(1)} s, ${(ms / (channels * 9)).toFixed(1)} ms per projection, ${s.engine.stats.runs - runs} ORT runs`);
  await server.close();
  fs.rmSync(root, { recursive: true, force: true });
})();
