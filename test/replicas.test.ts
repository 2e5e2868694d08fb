/**
 * Several server processes (API replicas) sharing Redis and PostgreSQL, as real processes on
 * loopback, without separate workers (INDEX_IN_API on, the default: each replica also takes the
 * queue's chunks): a job started through one replica streams its progress to the other's
 * subscribers (Redis pub/sub), its results are read through either (the shared index store), and
 * when one replica is killed, the other finishes the job, the killed one's chunks included
 * (BullMQ's stalled-job check, after INDEX_LEASE_S).
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { FIXTURE_MODELS, gql, makeDataset, openSubscriptions, ROOT } from './helpers';
import { PostgresServer, RedisServer, startPostgres, startRedis } from './servers';

interface Replica {
  url: string;
  proc: ChildProcess;
}

const LAYER = '/features/features.11/Relu';
const BUILD = `mutation { buildIndex(model: "alexnet", dataset: "shared", layers: ["${LAYER}"], k: 4) { id state } }`;
const TOP = `{ model(name: "alexnet") { layer(name: "${LAYER}") { filter(index: 7) { topActivations(dataset: "shared") { nodes { value image { name } position { y x } } } } } } }`;

describe('API replicas on Redis and PostgreSQL', () => {
  let redis: RedisServer;
  let postgres: PostgresServer;
  let dir: string;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-replicas-'));
    await makeDataset(path.join(dir, 'datasets', 'shared'), 40, 96, 96);
  });
  afterAll(async () => {
    for (const r of replicas) r.proc.kill('SIGKILL');
    await Promise.all([redis?.stop(), postgres?.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** `npm start`'s process, on a free port, with its own CACHE_DIR. */
  const startReplica = async (env: Record<string, string>): Promise<Replica> => {
    const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js')], {
      env: {
        ...process.env,
        MODELS_DIR: FIXTURE_MODELS,
        DATASETS_DIR: path.join(dir, 'datasets'),
        CACHE_DIR: fs.mkdtempSync(path.join(dir, 'cache-')),
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'info',
        MAX_BATCH: '2',
        INDEX_CHECKPOINT_MS: '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /"url":"(http:\/\/[^"]+)\/graphql"[^\n]*convscope ready/.exec(out);
        if (m) resolve(m[1]);
      });
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      proc.on('exit', (code) => reject(new Error(`replica exited with ${code}:\n${out}`)));
    });
    const replica = { url, proc };
    replicas.push(replica);
    return replica;
  };

  test('progress reaches the other replica; results are shared; a killed replica’s job is finished by the other', async () => {
    const env = {
      REDIS_URL: redis.url,
      URL_SIGNING_KEY: 'replicas-test-url-signing-key-0123456789',
      DATABASE_URL: await postgres.createDatabase(),
      INDEX_LEASE_S: '2',
      INDEX_CHUNK_IMAGES: '4',
    };
    const [a, b] = await Promise.all([startReplica(env), startReplica(env)]);

    // The reference: the same index in one embedded process (SQLite, no Redis).
    const single = await startReplica({});
    const started = await gql(single.url, BUILD);
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    for (let i = 0; i < 600 && (await gql(single.url, `{ jobs { state } }`)).data.jobs[0].state !== 'DONE'; i++) await new Promise((r) => setTimeout(r, 100));
    const reference = (await gql(single.url, TOP)).data.model.layer.filter.topActivations.nodes;
    assert.equal(reference.length, 4);
    single.proc.kill('SIGKILL');

    // Started through A, watched through B (connected first, so that it subscribes at once).
    const subscriptions = await openSubscriptions(b.url);
    const job = (await gql(a.url, BUILD)).data.buildIndex;
    const seen: { state: string; imagesDone: number }[] = [];
    let killedAt = 0;
    try {
      const { error } = await subscriptions.until<{ jobProgress: { state: string; imagesDone: number } }>(
        `subscription($id: ID!) { jobProgress(id: $id) { state imagesDone } }`,
        { id: job.id },
        ({ jobProgress }) => {
          seen.push(jobProgress);
          // Once B has heard A's progress live (its first event is the state when it subscribed), A dies; B takes its chunks over.
          if (!killedAt && seen.length >= 2 && jobProgress.state === 'RUNNING') {
            killedAt = jobProgress.imagesDone;
            a.proc.kill('SIGKILL');
          }
        },
      );
      assert.equal(error, undefined, `B's subscription: ${JSON.stringify(seen)}`);
    } finally {
      await subscriptions.close();
    }
    assert.ok(killedAt > 0 && killedAt < 40, `A was killed mid-job (at ${killedAt} of 40)`);
    const done = seen.map((s) => s.imagesDone);
    assert.ok(done.filter((n) => n <= killedAt).length >= 2, `B's subscriber saw A's progress: ${JSON.stringify(seen)}`);
    assert.deepEqual(seen.at(-1), { state: 'DONE', imagesDone: 40 });
    // The top-k through B equals the single process's, row for row.
    assert.deepEqual((await gql(b.url, TOP)).data.model.layer.filter.topActivations.nodes, reference);
  }, 180_000);
});
