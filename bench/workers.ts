/**
 * Benchmark (run by hand): one index job run by the queue's workers (`convscope worker`, 1 ONNX
 * Runtime thread each) against the single process (no Redis, SQLite, 2 threads), on the same
 * cores. Needs redis-server and PostgreSQL (as the tests do: test/servers.ts).
 *   npm run build && node dist/bench/workers.js [modelsDir=test/fixtures/models] [model=alexnet] [images=256] [rounds=3]
 * Makes a synthetic dataset of 256×256 JPEGs. Each round runs, in fresh processes, the single
 * process with ORT_THREADS=2, then one worker, then two (API process with INDEX_IN_API=0), and
 * times each job from buildIndex to DONE (process start-up excluded; each job has its own k, so
 * its own index). Prints images per second per run, medians and ranges over the rounds, and the
 * ratios to the single process within each round (this machine's speed drifts).
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, startPostgres, startRedis } from '../test/servers';
import { syntheticJpegs } from './synthetic';
import { median } from './timing';

const ROOT = path.resolve(__dirname, '..', '..');

async function gql(url: string, query: string): Promise<any> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  const body = (await res.json()) as { data?: any; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

/** Starts `node <script> [args]` with `env` and resolves with its listening address once it logs that it is ready. */
async function launch(script: string, args: string[], env: Record<string, string>): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', script), ...args], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/convscope (worker )?ready/.test(out)) resolve();
    });
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.on('exit', (code) => reject(new Error(`${script} exited with ${code}:\n${out}`)));
  });
  return { proc, url: `http://127.0.0.1:${port}` };
}

(async () => {
  const modelsDir = path.resolve(process.argv[2] ?? path.join(ROOT, 'test', 'fixtures', 'models'));
  const model = process.argv[3] ?? 'alexnet';
  const count = Number(process.argv[4] ?? 256);
  const rounds = Number(process.argv[5] ?? 3);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-bench-workers-'));
  const dir = path.join(root, 'datasets', 'synthetic');
  await syntheticJpegs(dir, count);
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  const common = {
    MODELS_DIR: modelsDir,
    DATASETS_DIR: path.join(root, 'datasets'),
    CACHE_DIR: path.join(root, 'cache'), // compiled graphs kept across runs: none of them compiles
    CACHE_DISK_MB: '0',
    MODELS_RESCAN_S: '0',
  };
  let k = 0;
  /** One job in fresh processes: images per second from buildIndex to DONE. */
  const run = async (workers: number): Promise<number> => {
    k++;
    const queued: Record<string, string> = workers > 0 ? { REDIS_URL: redis.url, DATABASE_URL: await postgres.createDatabase(), INDEX_IN_API: '0' } : {};
    const api = await launch('main.js', [], { ...common, ...queued, ORT_THREADS: '2' });
    const procs = [api.proc];
    try {
      for (let w = 0; w < workers; w++) procs.push((await launch('cli.js', ['worker'], { ...common, ...queued, ORT_THREADS: '1' })).proc);
      const started = performance.now();
      const { id } = (await gql(api.url, `mutation { buildIndex(model: "${model}", dataset: "synthetic", k: ${k}) { id } }`)).buildIndex;
      for (;;) {
        const { state, imagesDone } = (await gql(api.url, `{ node(id: "${id}") { ... on Job { state imagesDone } } }`)).node;
        if (state === 'DONE' && imagesDone === count) return (count * 1000) / (performance.now() - started);
        if (state !== 'QUEUED' && state !== 'RUNNING') throw new Error(`job ${state}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      for (const p of procs) p.kill('SIGKILL');
    }
  };

  const configs = [
    ['single process, 2 threads', 0],
    ['1 worker, 1 thread', 1],
    ['2 workers, 1 thread each', 2],
  ] as const;
  const rates: number[][] = configs.map(() => []);
  try {
    await run(0); // warm-up: compiles the graph into CACHE_DIR/graphs, warms the disk
    for (let r = 0; r < rounds; r++) {
      for (const [i, [name, workers]] of configs.entries()) {
        rates[i].push(await run(workers));
        console.log(`round ${r + 1}: ${name}: ${rates[i].at(-1)!.toFixed(1)} img/s`);
      }
    }
  } finally {
    await Promise.all([redis.stop(), postgres.stop()]);
    fs.rmSync(root, { recursive: true, force: true });
  }
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
  console.log(`\n${model}, ${count} JPEGs 256×256, every Conv and Relu, ${os.cpus().length} cores (${os.cpus()[0].model}), ${new Date().toISOString()}`);
  for (const [i, [name]] of configs.entries()) {
    const ratios = rates[i].map((x, r) => x / rates[0][r]);
    console.log(
      `${name.padEnd(28)} median ${median(rates[i]).toFixed(1)} img/s (${range(rates[i])}); ÷ single process, same round: median ${median(ratios).toFixed(2)} (${range(ratios)})`,
    );
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
