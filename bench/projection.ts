/**
 * Benchmark (run by hand): AlexNet 224×224 (torchvision layout, random weights), target relu5.
 *   /usr/bin/python3 bench/alexnet.py /tmp/alexnet/alexnet.onnx
 *   npm run build && node dist/bench/projection.js /tmp/alexnet [--wasm] [--torch]
 * Prints medians of raw ORT runs: forward to relu5 and projections at batch 1/8/32, their ratio,
 * PyTorch 1.13's autograd deconvnet on the same machine (--torch), one uncached projection
 * query over HTTP against the raw run of the same graph (with a new inline image, and with an
 * uploaded one), and the wasm backend's ratio (--wasm).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { startServer } from '../src/server';
import { createServices } from '../src/service/services';
import { measure, relu5Runs, report, TARGET } from './relu5';
import { median, REPEATS, torchEnv, WARMUP } from './timing';

const dir = process.argv[2];
const flags = new Set(process.argv.slice(3));

(async () => {
  const env = {
    MODELS_DIR: dir,
    CACHE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-')),
    LOG_LEVEL: 'warn',
    ORT_THREADS: '2',
    PORT: '0',
    HOST: '127.0.0.1',
  };
  const cpu = await createServices(loadConfig(env));
  const rows = await measure(cpu.engine, cpu.registry.models.get('alexnet')!, [1, 8, 32]);
  report('cpu (onnxruntime-node, 2 threads)', rows);

  if (flags.has('--torch')) {
    const out = execFileSync('/usr/bin/python3', [path.join(__dirname, '..', '..', 'bench', 'torch_deconvnet.py'), String(REPEATS), String(WARMUP)], {
      encoding: 'utf8',
      env: torchEnv(),
    });
    const torch = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
    console.log('\nPyTorch 1.13 autograd deconvnet (2 threads), ms per batch:', torch);
    const ours8 = rows.find((r) => r.batch === 8)!.projection;
    console.log(`batch 8: convscope ${(8000 / ours8).toFixed(1)} img/s vs torch ${(8000 / torch['8']).toFixed(1)} img/s → ${(torch['8'] / ours8).toFixed(2)}×`);
  }

  // One uncached projection query over HTTP vs the raw run of the same graph at batch 1, for a
  // new image sent inline each time (decoded per query), and for an image the server already
  // has (uploaded once; a new filter each time, so the projection is still uncached).
  const server = await startServer(loadConfig(env), cpu);
  const sharp = (await import('sharp')).default;
  const picture = (i: number) => {
    const raw = Buffer.alloc(224 * 224 * 3);
    for (let k = 0; k < raw.length; k++) raw[k] = (k * 7919 + i * 104729) % 251;
    return sharp(raw, { raw: { width: 224, height: 224, channels: 3 } })
      .png()
      .toBuffer();
  };
  const post = async (query: string, variables: Record<string, unknown>) => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { errors?: unknown; data?: any };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  // Variables, as clients send them: the document is then parsed and validated once.
  const projectionQuery = `query($img: ImageInput!, $filter: Int!) { model(name: "alexnet") { layer(name: "${TARGET}") { filter(index: $filter) { projection(image: $img) { seedValue } } } } }`;
  // Each query is timed right after a raw run of the same graph at batch 1, and the ratio is of
  // the two medians: this machine's speed drifts by 20 % over minutes. A pause before each lets
  // the work a query leaves behind (cache writes) finish, so that neither is timed with it.
  const raw = await relu5Runs(cpu.engine, cpu.registry.models.get('alexnet')!, 1);
  const pause = () => new Promise((resolve) => setTimeout(resolve, 50));
  const paired = async (query: string, variablesFor: (i: number) => Promise<Record<string, unknown>>) => {
    const [raws, https]: number[][] = [[], []];
    for (let i = 0; i < REPEATS + WARMUP; i++) {
      const variables = await variablesFor(i);
      await pause();
      let t = performance.now();
      await raw.projection();
      const r = performance.now() - t;
      await pause();
      t = performance.now();
      await post(query, variables);
      if (i >= WARMUP) {
        raws.push(r);
        https.push(performance.now() - t);
      }
    }
    return { raw: median(raws), http: median(https) };
  };
  const inline = await paired(projectionQuery, async (i) => ({ img: { base64: (await picture(i)).toString('base64') }, filter: i }));
  const uploaded = await post('mutation($b: String!) { uploadImage(base64: $b) { id } }', { b: (await picture(1000)).toString('base64') });
  const known = await paired(projectionQuery, async (i) => ({ img: { id: uploaded.uploadImage.id }, filter: 100 + i }));
  // The least any query costs here: HTTP, Express and Apollo around a field that runs nothing.
  const floor = await paired(
    'query($filter: Int!) { model(name: "alexnet") { layer(name: "' + TARGET + '") { filter(index: $filter) { index } } } }',
    async (i) => ({ filter: i % 256 }),
  );
  const line = (what: string, m: { raw: number; http: number }) =>
    `  ${what}: ${m.http.toFixed(1)} ms, raw run ${m.raw.toFixed(1)} ms → ${(m.http / m.raw).toFixed(2)}×`;
  console.log('\nuncached projection query over HTTP vs the raw ORT run of the same graph at batch 1, each query after a raw run:');
  console.log(line('a new image inline', inline));
  console.log(line('an uploaded image, a new filter', known));
  console.log(
    `  a query that runs no inference: ${floor.http.toFixed(1)} ms (with the raw run ${floor.raw.toFixed(1)} ms: ${((floor.raw + floor.http) / floor.raw).toFixed(2)}×, the least any projection query could take)`,
  );
  await server.close();

  if (flags.has('--wasm')) {
    const wasm = await createServices(loadConfig({ ...env, CONVSCOPE_BACKEND: 'wasm' }));
    const w = await measure(wasm.engine, wasm.registry.models.get('alexnet')!, [8]);
    report('wasm (onnxruntime-web in Node)', w);
    console.log(`wasm/native projection time at batch 8: ${(w[0].projection / rows.find((r) => r.batch === 8)!.projection).toFixed(2)}×`);
    await wasm.engine.close();
  }
  fs.rmSync(env.CACHE_DIR, { recursive: true, force: true });
})();
