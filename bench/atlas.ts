/**
 * The whole-model atlas against the API (run by hand):
 *   /usr/bin/python3 bench/alexnet.py /tmp/alexnet/alexnet.onnx
 *   npm run build && node dist/bench/atlas.js /tmp/alexnet [--images 300] [--layers a,b] [--api-units 0]
 *
 * Writes --images photo-like JPEGs (256×256) as a dataset, builds AlexNet's index over it (timed
 * apart), then times, in one run:
 *   atlas: service/atlas.ts writing every Conv and ReLU unit's top-9 (per layer);
 *   API:   the same pictures asked of a server one query at a time — per unit, its top-9's
 *          cropped projections and patches, then every URL fetched — on a server with a cache
 *          and an index of its own, so nothing the atlas computed is reused. --api-units N times only the first N units of
 *          each layer and scales to the layer's size (printed as such); 0: every unit.
 * Prints seconds per layer for both and the ratio.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../src/config';
import { defaultIndexLayers } from '../src/index/jobs';
import { startServer } from '../src/server';
import { writeAtlas } from '../src/service/atlas';
import { createServices } from '../src/service/services';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const dir = process.argv[2];
const IMAGES = Number(arg('images', '300'));
const API_UNITS = Number(arg('api-units', '0'));

async function photo(seed: number): Promise<Buffer> {
  const size = 256;
  const raw = Buffer.alloc(size * size * 3);
  let s = seed * 7919 + 1;
  const f = [1 + (seed % 7), 1 + (seed % 5), 1 + (seed % 3)];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        const v = 128 + 80 * Math.sin((x * f[c] + y * f[(c + 1) % 3]) / (6 + (seed % 11))) + 30 * Math.cos((x - y) / (3 + (seed % 4))) + ((s >> 16) % 30) - 15;
        raw[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, v));
      }
    }
  }
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality: 88 })
    .toBuffer();
}

(async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-atlas-bench-'));
  const datasets = path.join(tmp, 'datasets');
  fs.mkdirSync(path.join(datasets, 'photos'), { recursive: true });
  for (let i = 0; i < IMAGES; i++) fs.writeFileSync(path.join(datasets, 'photos', `p${String(i).padStart(4, '0')}.jpg`), await photo(i));
  const env = {
    MODELS_DIR: dir,
    DATASETS_DIR: datasets,
    CACHE_DIR: path.join(tmp, 'cache'),
    LOG_LEVEL: 'warn',
    ORT_THREADS: '2',
    ...(process.env.ATLAS_BATCH ? { ATLAS_BATCH: process.env.ATLAS_BATCH } : {}),
    PORT: '0',
    HOST: '127.0.0.1',
  };
  const services = await createServices(loadConfig(env));
  try {
    const model = services.registry.models.get('alexnet')!;
    const dataset = services.datasets.datasets.get('photos')!;
    const layers = arg('layers', '') ? arg('layers', '').split(',') : defaultIndexLayers(model);
    let t = performance.now();
    const job = await services.jobs.start(model, dataset, layers, 9);
    const done = await services.jobs.wait(job.id);
    if (done?.state !== 'DONE') throw new Error(`index: ${done?.state} ${done?.error}`);
    console.log(
      `AlexNet, ${IMAGES} photos, ${layers.length} layers, ${os.cpus().length} cores; index built in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    // ONNX Runtime's share of each layer, by the layer in progress: its runs' seconds, and the
    // seconds it stood idle between two runs (waiting for the main thread).
    const ort = new Map<string, { seconds: number; idle: number; runs: number }>();
    let current = '';
    let lastEnd: number | undefined;
    services.engine.observers.push({
      run(items, seconds) {
        const now = performance.now();
        const idle = lastEnd === undefined ? 0 : Math.max(0, now - seconds * 1000 - lastEnd) / 1000;
        lastEnd = now;
        const o = ort.get(current) ?? { seconds: 0, idle: 0, runs: 0 };
        ort.set(current, { seconds: o.seconds + seconds, idle: o.idle + idle, runs: o.runs + 1 });
      },
    });
    t = performance.now();
    const atlas = await writeAtlas(services, model, dataset, path.join(tmp, 'atlas'), { layers, onProgress: (p) => (current = p.layer) });
    const atlasSeconds = (performance.now() - t) / 1000;

    // The API, one query at a time, on a server with a cache of its own (nothing the atlas computed is reused) and its own index.
    const server = await startServer(loadConfig({ ...env, CACHE_DIR: path.join(tmp, 'cache-api'), RESPONSE_CACHE: 'off' }));
    const apiJob = await server.services.jobs.start(model, dataset, layers, 9);
    await server.services.jobs.wait(apiJob.id);
    const rows: { layer: string; units: number; atlas: number; api: number; scaled: boolean }[] = [];
    try {
      const query = `query($layer: String!, $index: Int!) { model(name: "alexnet") { layer(name: $layer) { filter(index: $index) {
        topActivations(dataset: "photos", first: 9) { nodes { patchUrl projection { imageUrl(crop: true) } } } } } } }`;
      for (const a of atlas) {
        const n = API_UNITS > 0 ? Math.min(API_UNITS, a.units) : a.units;
        const start = performance.now();
        for (let index = 0; index < n; index++) {
          const res = await fetch(`${server.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query, variables: { layer: a.name, index } }),
          });
          const body = (await res.json()) as { data?: any; errors?: unknown };
          if (body.errors) throw new Error(JSON.stringify(body.errors));
          for (const node of body.data.model.layer.filter.topActivations.nodes) {
            for (const url of [node.patchUrl, node.projection.imageUrl]) {
              const got = await fetch(server.url + url);
              if (got.status !== 200) throw new Error(`${url}: ${got.status}`);
              await got.arrayBuffer();
            }
          }
        }
        const seconds = ((performance.now() - start) / 1000) * (a.units / n);
        rows.push({ layer: a.name, units: a.units, atlas: a.seconds, api: seconds, scaled: n < a.units });
      }
    } finally {
      await server.close();
    }
    console.log(
      `${'layer'.padEnd(26)} ${'units'.padStart(5)} ${'atlas s'.padStart(8)} ${'ORT s'.padStart(6)} ${'idle s'.padStart(6)} ${'runs'.padStart(5)} ${'API s'.padStart(8)}  ratio`,
    );
    for (const r of rows) {
      const o = ort.get(r.layer) ?? { seconds: 0, idle: 0, runs: 0 };
      console.log(
        `${r.layer.padEnd(26)} ${String(r.units).padStart(5)} ${r.atlas.toFixed(1).padStart(8)} ${o.seconds.toFixed(1).padStart(6)} ${o.idle.toFixed(1).padStart(6)} ${String(o.runs).padStart(5)} ${r.api.toFixed(1).padStart(8)}${r.scaled ? '*' : ' '} ${(r.api / r.atlas).toFixed(1).padStart(5)}×`,
      );
    }
    const api = rows.reduce((s, r) => s + r.api, 0);
    console.log(
      `total: atlas ${atlasSeconds.toFixed(1)} s (${atlas.reduce((s, a) => s + a.units, 0) * 9} projections), API one query at a time ${api.toFixed(1)} s: ${(api / atlasSeconds).toFixed(1)}× ${rows.some((r) => r.scaled) ? `(* scaled from the first ${API_UNITS} units of the layer)` : ''}`,
    );
  } finally {
    await services.engine.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
