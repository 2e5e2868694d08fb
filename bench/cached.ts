/**
 * Throughput of a cached projection query over loopback (issue 6): the server runs in a child
 * process (so its RSS is its own), autocannon drives it from this one for a bounded time.
 *
 *   npm run build && node dist/bench/cached.js [--duration 10] [--connections 50] [--memory-mb 64]
 *
 * Two modes, one after the other, each on a fresh server and cache folder:
 *  - response cache: Apollo answers the repeated query from the whole-response cache;
 *  - results cache (RESPONSE_CACHE=off): every request runs the resolvers, which find the
 *    projection, its PNG/.npy index and blobs in the memory tier.
 * Each reports requests/s, latency p50/p99, errors, the ORT runs during the load (must be 0:
 * everything cached) and the server's RSS sampled every 100 ms against the cache bound.
 */
import { ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { loadConfig } from '../src/config';
import { startServer } from '../src/server';

const ROOT = path.resolve(__dirname, '..', '..');

interface Sample {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}
interface ServerStats {
  runs: number;
  items: number;
  memoryBytes: number;
  memoryLimit: number;
}
type FromChild = { type: 'ready'; url: string } | { type: 'sample'; sample: Sample } | { type: 'stats'; stats: ServerStats };

// ---- the child: a server that reports its memory ------------------------------------------------

async function serve(): Promise<void> {
  const server = await startServer(loadConfig());
  const send = (m: FromChild) => process.send!(m);
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    send({ type: 'sample', sample: { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers } });
  }, 100);
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'stats') {
      const { engine, cache } = server.services;
      send({
        type: 'stats',
        stats: { runs: engine.stats.runs, items: engine.stats.items, memoryBytes: cache.memory?.bytes ?? 0, memoryLimit: cache.memory?.limit ?? 0 },
      });
    } else if (msg.type === 'stop') {
      clearInterval(timer);
      void server.close().then(() => process.exit(0));
    }
  });
  send({ type: 'ready', url: server.url });
}

// ---- the parent: load and measure ---------------------------------------------------------------

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

class Child {
  samples: Sample[] = [];
  private waiters: ((m: FromChild) => void)[] = [];
  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: FromChild) => {
      if (m.type === 'sample') this.samples.push(m.sample);
      else this.waiters.shift()?.(m);
    });
  }
  next(): Promise<FromChild> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  async stats(): Promise<ServerStats> {
    const reply = this.next();
    this.proc.send({ type: 'stats' });
    return ((await reply) as { stats: ServerStats }).stats;
  }
  async stop(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.send({ type: 'stop' });
    await exited;
  }
}

async function gql(url: string, query: string, variables: Record<string, unknown>): Promise<any> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function picture(): Promise<Buffer> {
  const size = 224;
  const raw = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) raw[(y * size + x) * 3 + c] = Math.round(127.5 + 120 * Math.sin((x * (c + 1) + 13) / 9) * Math.cos((y + c * 7 + 1) / 11));
    }
  }
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer();
}

const QUERY = `query Projection($image: ImageInput!) { model(name: "alexnet") { layer(name: "/features/features.11/Relu") {
  filter(index: 3) { projection(image: $image) { seedValue position { y x } box { x y width height } imageUrl tensorUrl } } } } }`;

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;

async function runMode(name: string, env: Record<string, string>, duration: number, connections: number, memoryMb: number) {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-'));
  const proc = fork(__filename, ['--serve'], {
    env: {
      ...process.env,
      MODELS_DIR: path.join(ROOT, 'test', 'fixtures', 'models'),
      CACHE_DIR: cacheDir,
      CACHE_MEMORY_MB: String(memoryMb),
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const child = new Child(proc);
  try {
    const ready = (await child.next()) as { url: string };
    const { url } = ready;
    const png = await picture();
    const upload = await gql(url, 'mutation($b: String!) { uploadImage(base64: $b) { id } }', { b: png.toString('base64') });
    const variables = { image: { id: upload.uploadImage.id } };
    const first = await gql(url, QUERY, variables); // computes once
    await gql(url, QUERY, variables);
    const before = await child.stats();
    const rssBefore = child.samples.at(-1)!.rss;
    child.samples = [];
    const result = await autocannon({
      url: `${url}/graphql`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: QUERY, variables }),
      connections,
      duration,
    });
    const after = await child.stats();
    const again = await gql(url, QUERY, variables);
    if (JSON.stringify(again) !== JSON.stringify(first)) throw new Error('the answer changed under load');
    const rssMax = Math.max(...child.samples.map((s) => s.rss));
    return {
      mode: name,
      requestsPerSecond: Math.round(result.requests.average),
      requests: result.requests.total,
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
      errors: result.errors,
      timeouts: result.timeouts,
      non2xx: result.non2xx,
      ortRunsDuringLoad: after.runs - before.runs,
      memory: {
        cacheMemoryTier: `${mb(after.memoryBytes)} of ${mb(after.memoryLimit)} (CACHE_MEMORY_MB)`,
        withinTierBound: after.memoryBytes <= after.memoryLimit,
        rssBeforeLoad: mb(rssBefore),
        rssMaxDuringLoad: mb(rssMax),
        rssGrowth: mb(rssMax - rssBefore),
        samples: child.samples.length,
      },
    };
  } finally {
    await child.stop();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--serve')) return serve();
  const duration = arg('duration', 10);
  const connections = arg('connections', 50);
  const memoryMb = arg('memory-mb', 64);
  console.log(
    `cached projection query: ${connections} connections, ${duration} s per mode, CACHE_MEMORY_MB=${memoryMb}; ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), node ${process.version}`,
  );
  const results = [];
  for (const [name, env] of [
    ['response cache (Apollo whole-response cache over the tiered store)', {}],
    ['results cache (RESPONSE_CACHE=off: resolvers run, results and blobs from the memory tier)', { RESPONSE_CACHE: 'off' }],
  ] as const) {
    const r = await runMode(name, env, duration, connections, memoryMb);
    console.log(JSON.stringify(r, null, 2));
    results.push(r);
  }
  const failed = results.filter((r) => r.ortRunsDuringLoad !== 0 || r.errors || r.non2xx || !r.memory.withinTierBound);
  if (failed.length) {
    console.error(`FAILED: ${failed.map((r) => r.mode).join('; ')}`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
