/**
 * What asking for a projection's picture or tensor costs (run by hand):
 *   /usr/bin/python3 bench/alexnet.py /tmp/alexnet/alexnet.onnx
 *   npm run build && node dist/bench/render.js /tmp/alexnet [--queries 512] [--clients 32] [--images 8]
 *
 * A server in this process (ORT_THREADS 2, a temporary CACHE_DIR), 8 uploaded photos, and for
 * each set of fields — `seedValue`, `seedValue imageUrl`, `seedValue tensorUrl`, `seedValue` again (the
 * base is the mean of the two) — 512 projection
 * queries of distinct (ReLU unit, image) pairs never asked before, sent by 32 concurrent clients.
 * The three sets get disjoint pairs spread the same way over the layers. Then every URL handed out
 * is fetched (32 at a time): the bytes are made then. Prints projections/s per set, its ratio to
 * `seedValue` alone, and end to end (the queries, then every fetch).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../src/config';
import { startServer } from '../src/server';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const dir = process.argv[2];
const QUERIES = Number(arg('queries', '512'));
const CLIENTS = Number(arg('clients', '32'));
const IMAGES = Number(arg('images', '8'));
/** `seedValue` alone first and last: its mean is the base, so that drift in the machine's load cancels. */
const SETS = ['seedValue', 'seedValue imageUrl', 'seedValue tensorUrl', 'seedValue'];

/** A photo-like JPEG: smooth colour fields with noise, different per seed. */
async function photo(seed: number): Promise<Buffer> {
  const width = 320;
  const height = 240;
  const raw = Buffer.alloc(width * height * 3);
  let s = seed * 7919 + 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        raw[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, 128 + 90 * Math.sin((x * (c + 1) + y * (seed % 5)) / (9 + seed)) + ((s >> 16) % 40) - 20));
      }
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

/** Runs `work` over `items` with `clients` concurrent workers; the seconds it took. */
async function pool<T>(items: T[], clients: number, work: (item: T) => Promise<void>): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
  return (performance.now() - start) / 1000;
}

(async () => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-render-'));
  const server = await startServer(
    loadConfig({ MODELS_DIR: dir, CACHE_DIR: cacheDir, LOG_LEVEL: 'warn', ORT_THREADS: '2', PORT: '0', HOST: '127.0.0.1', RESPONSE_CACHE: 'off' }),
  );
  const gql = async (query: string, variables: Record<string, unknown>) => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: any; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  try {
    const ids: string[] = [];
    for (let i = 0; i <= IMAGES; i++)
      ids.push((await gql('mutation($b: String!) { uploadImage(base64: $b) { id } }', { b: (await photo(i)).toString('base64') })).uploadImage.id);
    const warmId = ids.pop()!;
    const all: { name: string; outputShape: number[] }[] = (
      await gql('{ model(name: "alexnet") { layers(kinds: [RELU], first: 100) { nodes { name outputShape } } } }', {})
    ).model.layers.nodes;
    const layers = all.filter((l) => l.outputShape.length === 3); // the conv ReLUs
    const units = layers.flatMap((l) => Array.from({ length: l.outputShape[0] }, (_, index) => ({ layer: l.name, index })));
    // Set v: QUERIES distinct units spread evenly over the layers, unit u on image (3u + v) mod IMAGES,
    // so no (unit, image) pair is asked twice in the whole run.
    const pairsOf = (v: number) =>
      Array.from({ length: QUERIES }, (_, i) => {
        const u = (Math.floor((i * units.length) / QUERIES) + v) % units.length;
        return { ...units[u], id: ids[(3 * u + v) % IMAGES] };
      });
    const query = (fields: string) => `query($layer: String!, $index: Int!, $id: ID!) { model(name: "alexnet") { layer(name: $layer) {
      filter(index: $index) { projection(image: { id: $id }) { ${fields} } } } } }`;
    // Warm-up: every layer's graphs compiled and sessions open, on pairs no set uses.
    for (const l of layers) await gql(query('seedValue imageUrl tensorUrl'), { layer: l.name, index: 0, id: warmId });
    console.log(
      `AlexNet, ${QUERIES} projection queries per set (distinct conv ReLU units on ${IMAGES} uploaded photos), ${CLIENTS} clients, ${os.cpus().length} cores`,
    );
    const rows: { fields: string; qps: number; seconds: number; urls: string[] }[] = [];
    for (const [v, fields] of SETS.entries()) {
      const mine = pairsOf(v);
      const urls: string[] = [];
      const seconds = await pool(mine, CLIENTS, async (p) => {
        const got = (await gql(query(fields), p)).model.layer.filter.projection;
        for (const key of ['imageUrl', 'tensorUrl']) if (got[key]) urls.push(got[key]);
      });
      rows.push({ fields, qps: QUERIES / seconds, seconds, urls });
    }
    const base = (rows[0].qps + rows[SETS.length - 1].qps) / 2;
    for (const row of rows) {
      let line = `${row.fields.padEnd(22)} ${row.qps.toFixed(1).padStart(6)} projections/s  ${((row.qps / base) * 100).toFixed(0).padStart(3)} % of seedValue alone (mean of both runs)`;
      if (row.urls.length) {
        let bytes = 0;
        const fetchSeconds = await pool(row.urls, CLIENTS, async (url) => {
          const res = await fetch(server.url + url);
          if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
          bytes += (await res.arrayBuffer()).byteLength;
        });
        const total = row.seconds + fetchSeconds;
        line += `;  then fetching all ${row.urls.length} (${(bytes / 1e6).toFixed(1)} MB): ${fetchSeconds.toFixed(1)} s, end to end ${(QUERIES / total).toFixed(1)} projections/s (${((QUERIES / total / base) * 100).toFixed(0)} % of seedValue alone)`;
      }
      console.log(line);
    }
  } finally {
    await server.close();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
