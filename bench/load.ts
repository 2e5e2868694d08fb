/**
 * Load test (run by hand; loopback only, bounded in time and requests):
 *   npm run build && node dist/bench/load.js [--models-dir test/fixtures/models] [--model zfnet]
 *     [--duration 90] [--concurrency 256] [--max-requests 200000] [--queue 64] [--inflight 64]
 *     [--rss-limit-mb 1500] [--images 3000] [--mix 40,30,25,5] [--occlusion 48,24]
 *   AlexNet:  /usr/bin/python3 bench/alexnet.py /tmp/alexnet/alexnet.onnx
 *             node dist/bench/load.js --models-dir /tmp/alexnet --model alexnet
 *
 * Starts `node dist/src/main.js` on 127.0.0.1 (a free port, a temporary CACHE_DIR, the bounds
 * MAX_QUEUED_ITEMS = --queue and MAX_INFLIGHT_REQUESTS = --inflight), then runs --concurrency clients for --duration seconds (or
 * until --max-requests), each sending, at random (--mix, in %, in this order):
 *   40 % metadata (models → layers),
 *   30 % cached projections (a few fixed image × filter pairs, computed before the clock starts),
 *   25 % uncached projections (an image never sent before, a random filter, layer and method),
 *    5 % occlusion (ZF Fig. 7 on an image never sent before: --occlusion size,stride in input
 *        pixels; 48,24 is an 8×8 grid, 64 forward passes, and the probability map's value range).
 * A client that gets OVERLOADED waits the hinted retryAfterMs (at most 1 s) before its next
 * request, as a well-behaved client would. Every 250 ms the server's RSS is sampled
 * (/proc/<pid>/status); its peak (VmHWM) is read at the end. Then SIGTERM: the server must exit 0.
 *
 * Prints requests/s (all and answered), latency percentiles (p50, p99) of answered requests per kind, error counts
 * by code, HTTP statuses, RSS. Exits 1 if any error other than OVERLOADED happened, the server
 * died, its peak RSS went over --rss-limit-mb, or it did not shut down cleanly.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { METHODS } from '../src/vocabulary';

const ROOT = path.resolve(__dirname, '..', '..');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const MODELS_DIR = path.resolve(arg('models-dir', path.join(ROOT, 'test', 'fixtures', 'models')));
const MODEL = arg('model', 'zfnet');
const DURATION_S = Number(arg('duration', '90'));
const CONCURRENCY = Number(arg('concurrency', '256'));
const MAX_REQUESTS = Number(arg('max-requests', '200000'));
const QUEUE = arg('queue', '64');
const INFLIGHT = arg('inflight', '64');
const RSS_LIMIT_MB = Number(arg('rss-limit-mb', '1500'));
const UNCACHED_IMAGES = Number(arg('images', '3000'));
const MIX = arg('mix', '40,30,25,5').split(',').map(Number);
const [OCCLUSION_SIZE, OCCLUSION_STRIDE] = arg('occlusion', '48,24').split(',').map(Number);
if (MIX.length !== 4 || MIX.some((x) => !(x >= 0))) throw new Error('--mix takes four percentages: metadata,cached,uncached,occlusion');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Started {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  cacheDir: string;
}

async function startServer(): Promise<Started> {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-load-'));
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js')], {
    env: {
      ...process.env,
      MODELS_DIR,
      CACHE_DIR: cacheDir,
      DATASETS_DIR: path.join(cacheDir, 'no-datasets'),
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      MAX_QUEUED_ITEMS: QUEUE,
      MAX_INFLIGHT_REQUESTS: INFLIGHT,
      REDIS_URL: '',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // PORT=0 and LOG_LEVEL=warn (no "ready" line): find the port it listens on, then poll /healthz.
  child.stdout!.resume();
  const url = await new Promise<string>((resolve, reject) => {
    void exited.then((code) => reject(new Error(`the server exited (${code}) before it was ready`)));
    const poll = async () => {
      const port = listeningPort(child.pid!);
      if (port) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/healthz`);
          if (res.ok) return resolve(`http://127.0.0.1:${port}`);
        } catch {
          // not yet
        }
      }
      setTimeout(() => void poll(), 200);
    };
    void poll();
  });
  return { child, url, exited, cacheDir };
}

/** The TCP port a process listens on (Linux: /proc/net/tcp and its socket inodes). */
function listeningPort(pid: number): number | undefined {
  let inodes: Set<string>;
  try {
    inodes = new Set(
      fs
        .readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return /socket:\[(\d+)\]/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
          } catch {
            return undefined;
          }
        })
        .filter((x): x is string => !!x),
    );
  } catch {
    return undefined;
  }
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[];
    try {
      lines = fs.readFileSync(table, 'utf8').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[3] === '0A' && inodes.has(cols[9])) return parseInt(cols[1].split(':')[1], 16);
    }
  }
  return undefined;
}

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function noisePng(seed: number, size: number): Promise<string> {
  const raw = Buffer.alloc(size * size * 3);
  let s = seed * 2654435761 + 1;
  for (let i = 0; i < raw.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    raw[i] = s >> 23;
  }
  return (
    await sharp(raw, { raw: { width: size, height: size, channels: 3 } })
      .png({ compressionLevel: 1 })
      .toBuffer()
  ).toString('base64');
}

const PROJECTION = `query($model: String!, $layer: String!, $index: Int!, $image: ImageInput!, $method: ProjectionMethod) {
  model(name: $model) { layer(name: $layer) { filter(index: $index) { projection(image: $image, method: $method) { seedValue imageUrl } } } } }`;
const OCCLUSION = `query($model: String!, $image: ImageInput!, $size: Int!, $stride: Int!) {
  model(name: $model) { occlusion(image: $image, size: $size, stride: $stride) { width height targetClass classProbability { min max } } } }`;
const METADATA = `query { models(first: 10) { nodes { name inputShape layers(first: 30) { nodes { name op outputShape receptiveField { size stride } } } } } }`;

interface Outcome {
  status: number;
  codes: string[];
  /** As the client saw it. */
  ms: number;
  /** As the server spent it (Server-Timing), if it said. */
  serverMs?: number;
}

/** Keep-alive connections, as many as there are clients. */
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

/** A POST with node:http (undici's fetch left some requests waiting for tens of seconds under this load). */
function post(url: string, payload: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/graphql`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function send(url: string, query: string, variables: Record<string, unknown> = {}): Promise<Outcome & { retryMs: number }> {
  const started = performance.now();
  try {
    const res = await post(url, JSON.stringify({ query, variables }));
    const body = JSON.parse(res.text) as { errors?: { extensions?: { code?: string; retryAfterMs?: number } }[] };
    const codes = (body.errors ?? []).map((e) => e.extensions?.code ?? 'NO_CODE');
    const retryMs = Math.max(0, ...(body.errors ?? []).map((e) => Number(e.extensions?.retryAfterMs) || 0));
    const timing = /dur=([\d.]+)/.exec(String(res.headers['server-timing'] ?? ''))?.[1];
    return { status: res.status, codes, ms: performance.now() - started, serverMs: timing ? Number(timing) : undefined, retryMs };
  } catch (e) {
    return { status: 0, codes: [`NETWORK: ${(e as Error).message}`], ms: performance.now() - started, retryMs: 0 };
  }
}

const pct = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);

async function main() {
  console.log(
    `load: ${MODEL} from ${MODELS_DIR}; ${CONCURRENCY} clients for ${DURATION_S} s (at most ${MAX_REQUESTS} requests), mix ${MIX.join('/')} % metadata/cached/uncached/occlusion (${OCCLUSION_SIZE} px every ${OCCLUSION_STRIDE}); MAX_QUEUED_ITEMS=${QUEUE}, MAX_INFLIGHT_REQUESTS=${INFLIGHT}`,
  );
  const server = await startServer();
  const pid = server.child.pid!;
  let died: number | null | undefined;
  void server.exited.then((code) => (died = code));
  try {
    const info = (await (
      await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: `query($m: String!) { model(name: $m) { inputShape layers(first: 100) { nodes { name op outputShape } } } }`,
          variables: { m: MODEL },
        }),
      })
    ).json()) as { errors?: unknown[]; data: { model: { inputShape: number[]; layers: { nodes: { name: string; op: string; outputShape: number[] }[] } } } };
    if (info.errors) throw new Error(`model ${MODEL}: ${JSON.stringify(info.errors)}`);
    const [, H] = info.data.model.inputShape;
    const layers = info.data.model.layers.nodes.filter((l) => (l.op === 'Conv' || l.op === 'Relu') && l.outputShape.length === 3);
    console.log(`input ${info.data.model.inputShape.join('×')}; ${layers.length} conv/relu layers to project from`);

    console.log(`making ${UNCACHED_IMAGES} distinct images …`);
    const images = await Promise.all(Array.from({ length: UNCACHED_IMAGES }, (_, i) => noisePng(i + 1000, H)));
    const cachedImage = await noisePng(7, H);
    const cachedPairs = [0, 1, 2, 3].map((i) => ({ model: MODEL, layer: layers[i % layers.length].name, index: i, image: { base64: cachedImage } }));
    for (const v of cachedPairs) {
      const r = await send(server.url, PROJECTION, v);
      if (r.codes.length) throw new Error(`warm-up: ${r.codes}`);
    }

    const outcomes: Record<string, Outcome[]> = { metadata: [], cached: [], uncached: [], occlusion: [] };
    const total = MIX.reduce((a, b) => a + b, 0);
    const [toMetadata, toCached, toUncached] = [MIX[0] / total, (MIX[0] + MIX[1]) / total, (MIX[0] + MIX[1] + MIX[2]) / total];
    let requests = 0;
    let nextImage = 0;
    let peakSampled = 0;
    const methods = Object.keys(METHODS);
    const deadline = Date.now() + DURATION_S * 1000;
    const { monitorEventLoopDelay } = await import('node:perf_hooks');
    const clientLag = monitorEventLoopDelay({ resolution: 10 });
    clientLag.enable();
    let maxQueued = 0;
    let maxInFlight = 0;
    const sampler = setInterval(() => {
      peakSampled = Math.max(peakSampled, rssKb(pid, 'VmRSS'));
      void fetch(`${server.url}/healthz`)
        .then((r) => r.json() as Promise<{ inference?: { queued: number }; requests?: { inFlight: number } }>)
        .then((h) => {
          maxQueued = Math.max(maxQueued, h.inference?.queued ?? 0);
          maxInFlight = Math.max(maxInFlight, h.requests?.inFlight ?? 0);
        })
        .catch(() => undefined);
    }, 250);
    const started = performance.now();
    const client = async (c: number) => {
      let rnd = c * 7919 + 17;
      const next = () => (rnd = (rnd * 1103515245 + 12345) % 2147483648) / 2147483648;
      while (Date.now() < deadline && requests < MAX_REQUESTS && died === undefined) {
        requests++;
        const pick = next();
        let kind: string;
        let r: Outcome & { retryMs: number };
        if (pick < toMetadata) {
          kind = 'metadata';
          r = await send(server.url, METADATA);
        } else if (pick < toCached) {
          kind = 'cached';
          r = await send(server.url, PROJECTION, cachedPairs[Math.floor(next() * cachedPairs.length)]);
        } else if (pick >= toUncached) {
          kind = 'occlusion';
          r = await send(server.url, OCCLUSION, {
            model: MODEL,
            image: { base64: images[nextImage++ % images.length] },
            size: OCCLUSION_SIZE,
            stride: OCCLUSION_STRIDE,
          });
        } else {
          kind = 'uncached';
          const layer = layers[Math.floor(next() * layers.length)];
          const image = images[nextImage++ % images.length];
          r = await send(server.url, PROJECTION, {
            model: MODEL,
            layer: layer.name,
            index: Math.floor(next() * layer.outputShape[0]),
            image: { base64: image },
            method: methods[Math.floor(next() * methods.length)],
          });
        }
        outcomes[kind].push(r);
        if (r.codes.includes('OVERLOADED')) await sleep(Math.min(1000, r.retryMs || 100));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, c) => client(c)));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const peakKb = rssKb(pid, 'VmHWM');
    const endKb = rssKb(pid, 'VmRSS');

    // ---- report
    const all = Object.values(outcomes).flat();
    const byCode = new Map<string, number>();
    const byStatus = new Map<number, number>();
    for (const o of all) {
      byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
      for (const code of new Set(o.codes)) byCode.set(code, (byCode.get(code) ?? 0) + 1);
    }
    const answered = all.filter((o) => o.codes.length === 0);
    console.log(
      `\n${all.length} requests in ${seconds.toFixed(1)} s: ${(all.length / seconds).toFixed(1)} req/s, ${(answered.length / seconds).toFixed(1)} answered/s`,
    );
    for (const [kind, list] of Object.entries(outcomes)) {
      const ok = list
        .filter((o) => o.codes.length === 0)
        .map((o) => o.ms)
        .sort((a, b) => a - b);
      const okServer = list
        .filter((o) => o.codes.length === 0 && o.serverMs !== undefined)
        .map((o) => o.serverMs!)
        .sort((a, b) => a - b);
      const refused = list
        .filter((o) => o.codes.includes('OVERLOADED'))
        .map((o) => o.ms)
        .sort((a, b) => a - b);
      console.log(
        `  ${kind.padEnd(10)}${String(list.length).padStart(7)} sent, ${String(ok.length).padStart(7)} answered (${(ok.length / seconds).toFixed(1)}/s; client p50 ${pct(ok, 50).toFixed(0)} / p99 ${pct(ok, 99).toFixed(0)} ms, server p50 ${pct(okServer, 50).toFixed(0)} / p99 ${pct(okServer, 99).toFixed(0)} / max ${pct(okServer, 100).toFixed(0)} ms), ${refused.length} OVERLOADED (client p50 ${pct(refused, 50).toFixed(0)} ms)`,
      );
    }
    console.log(
      `  the load client's own event loop: mean delay ${(clientLag.mean / 1e6).toFixed(0)} ms, max ${(clientLag.max / 1e6).toFixed(0)} ms (client-side times include it)`,
    );
    console.log(`  sampled maxima: ${maxInFlight} requests in flight (limit ${INFLIGHT}), ${maxQueued} inference items waiting (limit ${QUEUE})`);
    console.log(`  errors by code: ${byCode.size ? [...byCode].map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
    console.log(`  HTTP statuses: ${[...byStatus].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    console.log(
      `  server RSS: peak ${(peakKb / 1024).toFixed(0)} MB (VmHWM; sampled max ${(peakSampled / 1024).toFixed(0)} MB), at the end ${(endKb / 1024).toFixed(0)} MB; limit ${RSS_LIMIT_MB} MB`,
    );

    // What holds the memory at the end: the cache's memory tier, the loaded sessions (estimated), the JS heap and buffers.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN) / 2 ** 20;
    console.log(
      `  held at the end: cache memory tier ${metric('convscope_cache_bytes{tier="memory"}').toFixed(0)} MB, sessions (estimated) ${metric('convscope_engine_session_bytes').toFixed(0)} MB, JS heap ${metric('nodejs_heap_size_used_bytes').toFixed(0)} MB, buffers ${metric('nodejs_external_memory_bytes').toFixed(0)} MB (the main thread's)`,
    );
    const after = await send(server.url, METADATA);
    const problems: string[] = [];
    if (died !== undefined) problems.push(`the server died (exit ${died})`);
    if (after.codes.length) problems.push(`after the load a metadata query failed: ${after.codes}`);
    for (const code of byCode.keys()) if (code !== 'OVERLOADED') problems.push(`error ${code}`);
    if (peakKb / 1024 > RSS_LIMIT_MB) problems.push(`peak RSS over ${RSS_LIMIT_MB} MB`);

    const stopAt = Date.now();
    server.child.kill('SIGTERM');
    const code = await Promise.race([server.exited, sleep(20_000).then(() => 'timeout')]);
    console.log(`  SIGTERM → exit ${code} after ${Date.now() - stopAt} ms`);
    if (code !== 0) problems.push(`shutdown: exit ${code}`);
    console.log(problems.length ? `\nFAILED: ${problems.join('; ')}` : '\nOK: no errors but OVERLOADED, no crash, memory bounded, clean shutdown');
    process.exitCode = problems.length ? 1 : 0;
  } finally {
    server.child.kill('SIGKILL');
    fs.rmSync(server.cacheDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
