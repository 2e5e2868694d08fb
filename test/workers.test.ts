/**
 * docker/compose.yaml without Docker: its API replicas and workers started as the file says
 * (command, environment, replicas, healthcheck), on a real redis-server and PostgreSQL on
 * loopback, as child processes. Index jobs go through one API replica while another streams their
 * progress; the workers take the chunks, and the top-k equals an uninterrupted single-process run
 * (SQLite, no Redis), row for row, through every fault: a worker and the API replica that started
 * the job killed mid-job (kill -9), Redis restarted empty mid-job, a job cancelled and started
 * again, an undecodable image; and a chunk that kills every worker that takes it fails its job
 * instead of going round for ever.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { parse } from 'yaml';
import { loadConfig } from '../src/config';
import { PostgresIndexStore } from '../src/index/postgres-store';
import { TopRow } from '../src/index/store';
import { createServices } from '../src/service/services';
import { FIXTURE_MODELS, gql, jobUpdates, makeDataset, ROOT } from './helpers';
import { freePort, PostgresServer, RedisServer, startPostgres, startRedis } from './servers';

interface ComposeService {
  command: string[];
  environment: Record<string, string>;
  deploy?: { replicas?: number };
  healthcheck?: { test: string[] };
  volumes?: string[];
}

interface Proc {
  name: string;
  proc: ChildProcess;
  env: Record<string, string>;
  url: string;
  /** Its log lines so far (pino JSON). */
  lines: Record<string, unknown>[];
}

const IMAGES = 48;
const CHUNK = 8;
const LAYERS = ['/features/features.3/Conv', '/features/features.11/Relu'];
const POISONED = 5;
/** The chunk of the `deadly` dataset that the test kills every worker for. */
const DEADLY = 2;
const compose = parse(fs.readFileSync(path.join(ROOT, 'docker', 'compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};

const build = (dataset: string, k: number) =>
  `mutation { buildIndex(model: "alexnet", dataset: "${dataset}", layers: ${JSON.stringify(LAYERS)}, k: ${k}) { id state } }`;
const JOB = `query($id: ID!) { node(id: $id) { ... on Job { state imagesDone imagesTotal failedImages { name index error } } } }`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('docker/compose.yaml: API replicas and workers on Redis and PostgreSQL', () => {
  let redis: RedisServer;
  let postgres: PostgresServer;
  let databaseUrl: string;
  let dir: string;
  const procs: Proc[] = [];
  /** The top-9 of each dataset from one process without the queue, every row. */
  const reference: Record<string, { rows: TopRow[]; failed: string[] }> = {};

  beforeAll(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    databaseUrl = await postgres.createDatabase();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-workers-'));
    await makeDataset(path.join(dir, 'datasets', 'shared'), IMAGES, 96, 96);
    fs.cpSync(path.join(dir, 'datasets', 'shared'), path.join(dir, 'datasets', 'poisoned'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'datasets', 'poisoned', `img-00${POISONED}.png`), Buffer.from('not a picture, though named like one'));
    // A chunk whose images are large (slow to decode), so that the test can kill its workers before they finish it.
    fs.cpSync(path.join(dir, 'datasets', 'shared'), path.join(dir, 'datasets', 'deadly'), { recursive: true });
    for (let i = DEADLY * CHUNK; i < (DEADLY + 1) * CHUNK; i++) {
      const big = await sharp({ create: { width: 6000, height: 6000, channels: 3, background: { r: 10 * i, g: 90, b: 200 } } })
        .png()
        .toBuffer();
      fs.writeFileSync(path.join(dir, 'datasets', 'deadly', `img-${String(i).padStart(3, '0')}.png`), big);
    }
    const services = await createServices(
      loadConfig({
        MODELS_DIR: FIXTURE_MODELS,
        DATASETS_DIR: path.join(dir, 'datasets'),
        CACHE_DIR: path.join(dir, 'single'),
        LOG_LEVEL: 'warn',
        ORT_WORKER: '0',
      }),
    );
    try {
      for (const name of ['shared', 'poisoned']) {
        const job = await services.jobs.start(services.registry.models.get('alexnet')!, services.datasets.datasets.get(name)!, LAYERS, 9);
        const done = (await services.jobs.wait(job.id))!;
        assert.equal(done.state, 'DONE', done.error ?? '');
        reference[name] = { rows: await services.jobs.store.tops(job.id), failed: done.failedImages.map((f) => f.name) };
      }
    } finally {
      await services.engine.close();
      await services.jobs.store.close();
    }
  });
  afterAll(async () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    await Promise.all([redis?.stop(), postgres?.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * One replica of a compose service, as its container would run it: its command from the working
   * folder (the image's /app is this checkout), its environment with the compose hosts replaced by
   * the loopback servers, the shared volume as CACHE_DIR; only the test's models, datasets, a
   * free port, and shorter leases and chunks are the test's own (and `extra`, a test's own settings).
   */
  const start = async (service: string, n: number, extra: Record<string, string> = {}): Promise<Proc> => {
    const { command, environment } = compose.services[service];
    const port = await freePort();
    const env = {
      ...Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, String(v)])),
      REDIS_URL: environment.REDIS_URL.replace('redis://redis:6379', redis.url),
      DATABASE_URL: databaseUrl,
      MODELS_DIR: FIXTURE_MODELS,
      DATASETS_DIR: path.join(dir, 'datasets'),
      CACHE_DIR: path.join(dir, 'volume-cache'),
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      INDEX_LEASE_S: '2',
      INDEX_CHUNK_IMAGES: String(CHUNK),
      MAX_BATCH: '4',
      ...extra,
    };
    assert.equal(command[0], 'node');
    const proc = spawn(process.execPath, command.slice(1), { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const p: Proc = { name: `${service}-${n}`, proc, env, url: `http://127.0.0.1:${port}`, lines: [] };
    await new Promise<void>((resolve, reject) => {
      let out = '';
      let partial = '';
      proc.stdout!.on('data', (d: Buffer) => {
        const text = partial + d.toString();
        const lines = text.split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          out += line + '\n';
          try {
            p.lines.push(JSON.parse(line));
          } catch {
            continue;
          }
          if (/convscope (worker )?ready/.test(line)) resolve();
        }
      });
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      proc.on('exit', (code, signal) => reject(new Error(`${p.name} exited (${code ?? signal}):\n${out}`)));
    });
    procs.push(p);
    return p;
  };

  /** Runs the service's compose healthcheck command with the process's environment: its exit status. */
  const healthcheck = (service: string, p: Proc) => {
    const [kind, program, ...args] = compose.services[service].healthcheck!.test;
    assert.equal(kind, 'CMD');
    assert.equal(program, 'node');
    const check = spawn(process.execPath, args, { env: { PATH: process.env.PATH, ...p.env }, stdio: 'ignore' });
    return new Promise<number | null>((resolve) => check.on('exit', resolve));
  };

  /** Every top-k row of the job, and its state, read from PostgreSQL. */
  const stored = async (id: string) => {
    const store = await PostgresIndexStore.open(databaseUrl);
    try {
      const key = JSON.parse(Buffer.from(id, 'base64url').toString())[1] as string;
      return { rows: await store.tops(key), row: (await store.get(key))!, chunks: await store.mergedChunks(key) };
    } finally {
      await store.close();
    }
  };
  /** The reference's top-k cut to k (ranking is a total order: the top-k is the top-9's first k). */
  const referenceTop = (dataset: string, k: number) => reference[dataset].rows.filter((r) => r.rank < k);

  /** Polls the job through `api` until it is no longer QUEUED or RUNNING. */
  const finished = async (api: Proc, id: string) => {
    for (let i = 0; i < 600; i++) {
      const job = (await gql(api.url, JOB, { id })).data.node;
      if (job.state !== 'QUEUED' && job.state !== 'RUNNING') return job;
      await sleep(100);
    }
    throw new Error('the job did not finish in 60 s');
  };
  /** Log lines of `p` about the job's chunks. */
  const chunkLines = (p: Proc, id: string, msg: RegExp) => {
    const key = JSON.parse(Buffer.from(id, 'base64url').toString())[1] as string;
    return p.lines.filter((l) => l.job === key && msg.test(String(l.msg)));
  };

  let apis: Proc[];
  let workers: Proc[];
  /**
   * The workers' "chunk merged" lines of the job (merged: true), once `count` have arrived or after
   * 5 s: a worker logs the merge after committing it, so the job can read DONE before the last line
   * has come through its pipe.
   */
  const mergeLines = async (id: string, count: number) => {
    const lines = () => workers.flatMap((w) => chunkLines(w, id, /chunk merged/)).filter((l) => l.merged === true);
    for (let i = 0; i < 500 && lines().length < count; i++) await sleep(10);
    return lines();
  };

  test('the file: redis, postgres, API replicas that only queue, workers; healthchecks and volumes', () => {
    const { redis: r, postgres: pg, api, worker } = compose.services;
    assert.ok(r.healthcheck && pg.healthcheck && api.healthcheck && worker.healthcheck, 'every service has a healthcheck');
    assert.ok(r.volumes?.length && pg.volumes?.length && api.volumes?.some((v) => v.endsWith(':/var/cache/convscope')), 'data in volumes');
    for (const v of [...r.volumes!, ...pg.volumes!, ...api.volumes!]) assert.ok(v.split(':')[0] in compose.volumes, `volume ${v} declared`);
    assert.equal(api.environment.INDEX_IN_API, '0');
    assert.deepEqual(worker.command.slice(1), ['dist/src/cli.js', 'worker']);
    assert.ok((api.deploy?.replicas ?? 1) >= 2 && (worker.deploy?.replicas ?? 1) >= 2);
  });

  test('they serve, the workers take the work, progress reaches the other replica, the top-k equals one process’s', async () => {
    apis = await Promise.all(Array.from({ length: compose.services.api.deploy!.replicas! }, (_, i) => start('api', i)));
    workers = await Promise.all(Array.from({ length: compose.services.worker.deploy!.replicas! }, (_, i) => start('worker', i)));
    for (const p of apis) assert.equal(await healthcheck('api', p), 0, `${p.name} healthy`);
    for (const p of workers) assert.equal(await healthcheck('worker', p), 0, `${p.name} healthy`);

    const job = (await gql(apis[0].url, build('shared', 9))).data.buildIndex;
    const seen = await watch(apis[1], job.id);
    assert.deepEqual(seen.at(-1), { state: 'DONE', imagesDone: IMAGES });
    assert.ok(new Set(seen.map((s) => s.imagesDone)).size >= 4, `the other replica saw the chunks' progress: ${JSON.stringify(seen)}`);
    const { rows, row } = await stored(job.id);
    assert.deepEqual(rows, referenceTop('shared', 9));
    assert.equal(row.nextImage, IMAGES);
    for (const p of apis) assert.equal(chunkLines(p, job.id, /chunk started/).length, 0, `${p.name} (INDEX_IN_API=0) took no chunk`);
    await mergeLines(job.id, IMAGES / CHUNK);
    const merged = workers.flatMap((w) => chunkLines(w, job.id, /chunk merged/));
    assert.equal(merged.length, IMAGES / CHUNK, 'each chunk merged once, by a worker');
    const top = `{ model(name: "alexnet") { layer(name: "${LAYERS[1]}") { filter(index: 3) { topActivations(dataset: "shared") { nodes { value image { name } } } } } } }`;
    const viaA = (await gql(apis[0].url, top)).data;
    assert.equal(viaA.model.layer.filter.topActivations.nodes.length, 9);
    assert.deepEqual((await gql(apis[1].url, top)).data, viaA, 'both replicas answer from the shared store');
  }, 60_000);

  /** Subscribes to the job through `api` until it ends; calls `during` with each update. */
  const watch = (api: Proc, id: string, during?: (u: { state: string; imagesDone: number }) => void) =>
    jobUpdates<{ state: string; imagesDone: number }>(api.url, id, 'state imagesDone', during, 40_000);

  test('kill -9 of a worker mid-chunk and of the API replica that started the job: the other worker finishes, the other replica streams it', async () => {
    const [victim, survivor] = workers;
    const [starter, watcher] = apis;
    const job = (await gql(starter.url, build('shared', 7))).data.buildIndex;
    // The victim dies as soon as it has taken a chunk of this job, before it can merge it.
    const killed = new Promise<number>((resolve) => {
      const poll = setInterval(() => {
        const [taken] = chunkLines(victim, job.id, /chunk started/);
        if (!taken) return;
        clearInterval(poll);
        victim.proc.kill('SIGKILL');
        starter.proc.kill('SIGKILL');
        resolve(taken.chunk as number);
      }, 1);
    });
    const seen = await watch(watcher, job.id);
    const chunk = await killed;
    assert.deepEqual(seen.at(-1), { state: 'DONE', imagesDone: IMAGES });
    assert.equal(chunkLines(victim, job.id, /chunk merged/).filter((l) => l.chunk === chunk).length, 0, `the victim was killed before merging chunk ${chunk}`);
    await mergeLines(job.id, IMAGES / CHUNK); // the victim's merges and the survivor's, the last logged after DONE
    assert.ok(
      chunkLines(survivor, job.id, /chunk merged/).some((l) => l.chunk === chunk && l.merged === true),
      `the survivor took chunk ${chunk} over (BullMQ's stalled-job check) and merged it`,
    );
    assert.deepEqual((await stored(job.id)).rows, referenceTop('shared', 7), 'the top-7 of an uninterrupted run, row for row');
    // Replacements, as Docker's restart policy would start them.
    apis[0] = await start('api', 2);
    workers[0] = await start('worker', 2);
  }, 60_000);

  test('Redis restarted empty mid-job: the chunks it lost are queued again, each merged once', async () => {
    const job = (await gql(apis[0].url, build('shared', 5))).data.buildIndex;
    // As soon as the workers take the job's first chunks, Redis dies with the others still queued.
    const started = () => new Set(workers.flatMap((w) => chunkLines(w, job.id, /chunk started/)).map((l) => l.chunk as number));
    for (let i = 0; started().size === 0; i++) {
      assert.ok(i < 5000, 'the workers took a chunk');
      await sleep(1);
    }
    const takenBefore = started();
    await redis.restart();
    assert.ok(takenBefore.size < IMAGES / CHUNK, `chunks were still queued when Redis lost them (taken: ${[...takenBefore]})`);
    const done = await finished(apis[1], job.id);
    assert.deepEqual({ state: done.state, imagesDone: done.imagesDone }, { state: 'DONE', imagesDone: IMAGES });
    const { rows, chunks } = await stored(job.id);
    assert.equal(chunks.size, IMAGES / CHUNK);
    const merges = await mergeLines(job.id, IMAGES / CHUNK);
    assert.deepEqual(
      merges.map((l) => l.chunk as number).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5],
      'each chunk merged exactly once',
    );
    assert.deepEqual(rows, referenceTop('shared', 5), 'nothing counted twice: the top-5 of an uninterrupted run');
  }, 60_000);

  test('cancelJob mid-job: chunks in flight merge nothing; buildIndex again finishes the rest, each chunk merged once', async () => {
    const job = (await gql(apis[0].url, build('shared', 8))).data.buildIndex;
    for (let i = 0; (await gql(apis[1].url, JOB, { id: job.id })).data.node.imagesDone < CHUNK; i++) {
      assert.ok(i < 5000, 'a first chunk merged');
      await sleep(1);
    }
    const cancelled = (await gql(apis[1].url, `mutation($id: ID!) { cancelJob(id: $id) { state imagesDone } }`, { id: job.id })).data.cancelJob;
    assert.equal(cancelled.state, 'CANCELLED');
    assert.ok(cancelled.imagesDone < IMAGES, `cancelled mid-job (${cancelled.imagesDone} of ${IMAGES})`);
    await sleep(1500); // the chunks that were running end, merging nothing
    const after = (await gql(apis[0].url, JOB, { id: job.id })).data.node;
    assert.deepEqual({ state: after.state, imagesDone: after.imagesDone }, cancelled);
    assert.equal((await gql(apis[0].url, build('shared', 8))).data.buildIndex.state, 'QUEUED');
    const done = await finished(apis[1], job.id);
    assert.deepEqual({ state: done.state, imagesDone: done.imagesDone }, { state: 'DONE', imagesDone: IMAGES });
    const merges = await mergeLines(job.id, IMAGES / CHUNK);
    assert.deepEqual(
      merges.map((l) => l.chunk as number).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5],
    );
    assert.deepEqual((await stored(job.id)).rows, referenceTop('shared', 8));
  }, 60_000);

  test('an undecodable image fails only itself, named in the job; the rest is indexed as by one process', async () => {
    assert.deepEqual(reference.poisoned.failed, [`img-00${POISONED}.png`], 'one process reports it too');
    const job = (await gql(apis[1].url, build('poisoned', 9))).data.buildIndex;
    const done = await finished(apis[0], job.id);
    assert.equal(done.state, 'DONE');
    assert.equal(done.imagesDone, IMAGES);
    assert.equal(done.failedImages.length, 1);
    assert.deepEqual({ name: done.failedImages[0].name, index: done.failedImages[0].index }, { name: `img-00${POISONED}.png`, index: POISONED });
    assert.match(done.failedImages[0].error, /./);
    const { rows } = await stored(job.id);
    assert.deepEqual(rows, reference.poisoned.rows);
    assert.ok(!rows.some((r) => r.image === POISONED), 'the image is in no top-k');
    assert.notDeepEqual(rows, reference.shared.rows, 'without it, some top-k differ');
  }, 60_000);

  test('a chunk that kills every worker taking it fails its job after INDEX_CHUNK_MAX_STARTS starts, naming its images; the other chunks merge', async () => {
    const MAX_STARTS = 2;
    for (const w of workers) w.proc.kill('SIGKILL');
    workers = await Promise.all([0, 1].map((i) => start('worker', 10 + i, { INDEX_CHUNK_MAX_STARTS: String(MAX_STARTS) })));
    const job = (await gql(apis[1].url, build('deadly', 9))).data.buildIndex;
    // Whoever takes the deadly chunk dies at once, and is replaced, as a restart policy would.
    let kills = 0;
    let replacing = Promise.resolve();
    const poll = setInterval(() => {
      workers.forEach((w, i) => {
        if (w.proc.killed || w.proc.exitCode !== null) return;
        if (!chunkLines(w, job.id, /chunk started/).some((l) => l.chunk === DEADLY)) return;
        w.proc.kill('SIGKILL');
        kills++;
        replacing = replacing.then(async () => {
          workers[i] = await start('worker', 20 + kills, { INDEX_CHUNK_MAX_STARTS: String(MAX_STARTS) });
        });
      });
    }, 1);
    try {
      const done = await finished(apis[0], job.id);
      assert.equal(done.state, 'FAILED');
      const error = (await gql(apis[0].url, `query($id: ID!) { node(id: $id) { ... on Job { error } } }`, { id: job.id })).data.node.error as string;
      assert.match(
        error,
        new RegExp(
          `chunk ${DEADLY} \\(images ${DEADLY * CHUNK}–${DEADLY * CHUNK + CHUNK - 1}\\) was taken ${MAX_STARTS} times \\(INDEX_CHUNK_MAX_STARTS\\) and never finished`,
        ),
      );
    } finally {
      clearInterval(poll);
      await replacing;
    }
    assert.equal(kills, MAX_STARTS, 'the chunk was started MAX_STARTS times, then no more');
    const { chunks } = await stored(job.id);
    assert.ok(!chunks.has(DEADLY), 'the deadly chunk merged nothing');
    assert.ok(chunks.size >= 1, `other chunks merged: ${[...chunks]}`);
  }, 120_000);
});
