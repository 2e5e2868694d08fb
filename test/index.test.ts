/**
 * Datasets and the top-k index (ZF Fig. 2): the index equals a brute-force top-k (ties
 * included), boxes are the hand-computed receptive fields mapped onto the original image,
 * progress arrives over a subscription, an unchanged index is not rebuilt, and an indexer
 * killed with SIGKILL half-way resumes to exactly the result of an uninterrupted run — each with
 * the index store in SQLite (the default) and in PostgreSQL (DATABASE_URL, a real server).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { toGlobalId } from '../src/ids';
import { topGridPng } from '../src/images/topgrid';
import { PostgresIndexStore } from '../src/index/postgres-store';
import { SqliteIndexStore } from '../src/index/sqlite-store';
import { IndexStore } from '../src/index/store';
import { errorCode, gql, makeDataset, openSubscriptions, ROOT, startTestServer, subscriptionEvents, FIXTURE_MODELS } from './helpers';
import { PostgresServer, startPostgres } from './servers';

/** One PostgreSQL server for this file, started on first use. */
let postgres: Promise<PostgresServer> | undefined;
afterAll(async () => (await postgres)?.stop());

/** The index stores every index test runs against: the environment that selects each (a fresh database). */
const STORES: Record<string, () => Promise<Record<string, string>>> = {
  SQLite: async () => ({}),
  PostgreSQL: async () => ({ DATABASE_URL: await (postgres ??= startPostgres()).then((p) => p.createDatabase()) }),
};

type Server = Awaited<ReturnType<typeof startTestServer>>;

const JOB_PROGRESS = `subscription($id: ID!) { jobProgress(id: $id) { state imagesDone imagesTotal } }`;

/** Toolbox rule, by hand: unit (y, x) of a layer with RF (size, stride, offset) sees [o + s·i, o + s·i + size) ∩ image. */
function expectedBox(y: number, x: number, rf: { size: number; stride: number; offset: number }, input: number, original: { width: number; height: number }) {
  const span = (i: number) => [Math.max(0, rf.offset + rf.stride * i), Math.min(input, rf.offset + rf.stride * i + rf.size)];
  const [y0, y1] = span(y);
  const [x0, x1] = span(x);
  const sx = original.width / input;
  const sy = original.height / input;
  const left = Math.floor(x0 * sx);
  const top = Math.floor(y0 * sy);
  return { x: left, y: top, width: Math.min(original.width, Math.ceil(x1 * sx)) - left, height: Math.min(original.height, Math.ceil(y1 * sy)) - top };
}

const TOP = `query($layer: String!, $index: Int!, $first: Int) { model(name: "alexnet") { layer(name: $layer) { filter(index: $index) {
  topActivations(dataset: "tiny", first: $first) { totalCount nodes { rank value position { y x } box { x y width height } patchUrl image { name label width height } } } } } } }`;

for (const [storeName, storeEnv] of Object.entries(STORES))
  describe(`datasets and the top-k index (${storeName})`, () => {
    let server: Server;
    let datasetsDir: string;
    let names: string[];
    const layers = ['/features/features.1/Relu', '/features/features.11/Relu'];
    const K = 4;

    beforeAll(async () => {
      datasetsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-datasets-'));
      names = await makeDataset(path.join(datasetsDir, 'tiny'), 16, 160, 120);
      server = await startTestServer({ DATASETS_DIR: datasetsDir, MAX_BATCH: '4', ...(await storeEnv()) });
    });
    afterAll(async () => {
      await server.close();
      fs.rmSync(datasetsDir, { recursive: true, force: true });
    });

    test('datasets list their images in name order with labels and sizes', async () => {
      const res = await gql(server.url, `{ dataset(name: "tiny") { name size images(first: 3) { totalCount nodes { name label width height url } } } }`);
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const d = res.data.dataset;
      assert.equal(d.size, 16);
      assert.deepEqual(
        d.images.nodes.map((n: { name: string }) => n.name),
        names.slice(0, 3),
      );
      assert.deepEqual([d.images.nodes[1].label, d.images.nodes[1].width, d.images.nodes[1].height], ['class 1', 160, 120]);
      const file = await fetch(server.url + d.images.nodes[0].url);
      assert.equal(file.status, 200);
      assert.deepEqual(Buffer.from(await file.arrayBuffer()), fs.readFileSync(path.join(datasetsDir, 'tiny', names[0])));
      assert.equal(errorCode(await gql(server.url, `{ dataset(name: "../tiny") { name } }`)), 'NOT_FOUND');
      assert.equal((await fetch(`${server.url}/datasets/tiny/..%2F..%2Fetc%2Fpasswd`)).status, 404);
    });

    test('before an index exists: INDEX_NOT_BUILT naming the mutation to run', async () => {
      const res = await gql(server.url, TOP, { layer: layers[0], index: 0 });
      assert.equal(errorCode(res), 'INDEX_NOT_BUILT');
      assert.match(res.errors![0].message, /buildIndex/);
    });

    test('buildIndex returns at once; progress arrives over the subscription until DONE', async () => {
      // Connect first, so that the subscription starts a few milliseconds after the mutation
      // returns, while the job (four batches) still runs; its first event is the current state.
      const subscriptions = await openSubscriptions(server.url);
      let seen: { state: string; imagesDone: number }[];
      let jobId = '';
      try {
        const start = await gql(
          server.url,
          `mutation($layers: [String!]) { buildIndex(model: "alexnet", dataset: "tiny", layers: $layers, k: ${K}) { id state imagesTotal } }`,
          { layers },
        );
        assert.equal(start.errors, undefined, JSON.stringify(start.errors));
        const job = start.data.buildIndex;
        jobId = job.id;
        assert.equal(job.imagesTotal, 16);
        const { events, error } = await subscriptions.until<{ jobProgress: { state: string; imagesDone: number } }>(JOB_PROGRESS, { id: job.id });
        assert.equal(error, undefined);
        seen = events.map((e) => e.jobProgress);
      } finally {
        await subscriptions.close();
      }
      assert.equal(seen[seen.length - 1].state, 'DONE');
      assert.ok(seen.length >= 2, `progress events: ${JSON.stringify(seen)}`);
      const done = seen.map((s) => s.imagesDone);
      assert.deepEqual(
        done,
        [...done].sort((a, b) => a - b),
        'imagesDone only grows',
      );

      // Subscribing to a finished job: its final state, then the end (not a silent wait).
      const late = await subscriptionEvents(server.url, JOB_PROGRESS, { id: jobId });
      assert.equal(late.error, undefined);
      assert.deepEqual(late.events, [{ jobProgress: { state: 'DONE', imagesDone: 16, imagesTotal: 16 } }]);
      const unknown = await subscriptionEvents(server.url, JOB_PROGRESS, { id: toGlobalId('Job', 'no-such-job') });
      assert.equal(unknown.events.length, 0);
      assert.equal((unknown.error as { extensions?: { code?: string } }[])[0].extensions?.code, 'NOT_FOUND');
    });

    test('the index equals a brute-force top-k over every image (ties: the earlier image)', async () => {
      const model = server.services.registry.models.get('alexnet')!;
      let ties = 0;
      for (const layerName of layers) {
        const layer = model.layerByName.get(layerName)!;
        const [C, H, W] = layer.outputShape;
        // Brute force: every image's whole activation, each channel's first maximum.
        const maxima: { value: number; image: number; y: number; x: number }[][] = Array.from({ length: C }, () => []);
        for (let i = 0; i < names.length; i++) {
          const bytes = fs.readFileSync(path.join(datasetsDir, 'tiny', names[i]));
          const act = await server.services.inference.activation(model, layer, { sha256: `brute-${i}`, bytes });
          for (let c = 0; c < C; c++) {
            let best = c * H * W;
            for (let p = c * H * W; p < (c + 1) * H * W; p++) if (act[p] > act[best]) best = p;
            const local = best - c * H * W;
            maxima[c].push({ value: act[best], image: i, y: Math.floor(local / W), x: local % W });
          }
        }
        for (const c of [0, 1, 2, Math.floor(C / 2), C - 1]) {
          const expected = [...maxima[c]].sort((a, b) => b.value - a.value || a.image - b.image).slice(0, K);
          const res = await gql(server.url, TOP, { layer: layerName, index: c, first: K });
          assert.equal(res.errors, undefined, JSON.stringify(res.errors));
          const got = res.data.model.layer.filter.topActivations.nodes;
          assert.deepEqual(
            got.map((n: { value: number; image: { name: string }; position: { y: number; x: number } }) => [
              Math.fround(n.value),
              n.image.name,
              n.position.y,
              n.position.x,
            ]),
            expected.map((e) => [e.value, names[e.image], e.y, e.x]),
            `${layerName} channel ${c}`,
          );
          for (let r = 1; r < got.length; r++) if (got[r].value === got[r - 1].value) ties++;
        }
      }
      assert.ok(ties > 0, 'the duplicated images create ties that the test exercises');
    });

    test('boxes are the receptive field mapped onto the original image, clipped; patches are those crops', async () => {
      // conv5 of AlexNet: 163 px, stride 16, offset −66 (224 px input); conv1: 11, 4, −2.
      const rfs: Record<string, { size: number; stride: number; offset: number }> = {
        [layers[0]]: { size: 11, stride: 4, offset: -2 },
        [layers[1]]: { size: 163, stride: 16, offset: -66 },
      };
      let clipped = 0;
      for (const layer of layers) {
        for (const index of [0, 5]) {
          const res = await gql(server.url, TOP, { layer, index, first: K });
          for (const n of res.data.model.layer.filter.topActivations.nodes) {
            const box = expectedBox(n.position.y, n.position.x, rfs[layer], 224, { width: 160, height: 120 });
            assert.deepEqual(n.box, box, `${layer} #${index} at ${JSON.stringify(n.position)}`);
            if (box.x === 0 || box.y === 0 || box.x + box.width === 160 || box.y + box.height === 120) clipped++;
            const patch = await sharp(Buffer.from(await (await fetch(server.url + n.patchUrl)).arrayBuffer())).metadata();
            const factor = Math.max(1, Math.ceil(64 / Math.max(box.width, box.height)));
            assert.deepEqual([patch.width, patch.height], [box.width * factor, box.height * factor]);
          }
        }
      }
      assert.ok(clipped > 0, 'some boxes touch the border');
    });

    test('projections of top activations seed at the indexed position; the Fig. 2 grid renders', async () => {
      const res = await gql(
        server.url,
        `{ model(name: "alexnet") { layer(name: "${layers[1]}") { filter(index: 3) { topActivations(dataset: "tiny", first: 2) { nodes { value position { y x } projection { seedValue position { y x } imageUrl(crop: true) } } } } topActivationsGrid(dataset: "tiny", first: 4, k: 4) } } }`,
      );
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      for (const n of res.data.model.layer.filter.topActivations.nodes) {
        assert.equal(n.projection.seedValue, n.value);
        assert.deepEqual(n.projection.position, n.position);
      }
      const grid = await sharp(Buffer.from(await (await fetch(server.url + res.data.model.layer.topActivationsGrid)).arrayBuffer())).metadata();
      assert.ok(grid.width! > 4 * 48 && grid.height! > 2 * 48, `grid ${grid.width}×${grid.height}`);
    });

    test('rebuilding an unchanged index is a no-op', async () => {
      const runs = server.services.engine.stats.runs;
      const again = await gql(
        server.url,
        `mutation($layers: [String!]) { buildIndex(model: "alexnet", dataset: "tiny", layers: $layers, k: ${K}) { state imagesDone } }`,
        { layers },
      );
      assert.deepEqual(again.data.buildIndex, { state: 'DONE', imagesDone: 16 });
      assert.equal(server.services.engine.stats.runs, runs);
    });

    test('node(id) fetches jobs and datasets by their IDs', async () => {
      const list = await gql(server.url, '{ jobs { id state model } datasets { nodes { id name size } } }');
      assert.equal(list.errors, undefined, JSON.stringify(list.errors));
      const job = list.data.jobs.find((j: { model: string }) => j.model === 'alexnet');
      const n = await gql(server.url, `query($id: ID!) { node(id: $id) { __typename id ... on Job { state model } } }`, { id: job.id });
      assert.deepEqual(n.data.node, { __typename: 'Job', id: job.id, state: job.state, model: 'alexnet' });
      const [dataset] = list.data.datasets.nodes;
      const d = await gql(server.url, `query($id: ID!) { node(id: $id) { __typename id ... on Dataset { name size } } }`, { id: dataset.id });
      assert.deepEqual(d.data.node, { __typename: 'Dataset', ...dataset });
      const gone = Buffer.from(JSON.stringify(['Job', 'no-such-job'])).toString('base64url');
      assert.equal(errorCode(await gql(server.url, `query($id: ID!) { node(id: $id) { id } }`, { id: gone })), 'NOT_FOUND');
    });
  });

for (const [storeName, storeEnv] of Object.entries(STORES))
  describe(`the indexer resumes after SIGKILL with the same result (${storeName})`, () => {
    let dir: string;
    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-kill-'));
      await makeDataset(path.join(dir, 'datasets', 'many'), 240, 32, 32);
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** An index store of its own for each run: a CACHE_DIR (SQLite) or a database (PostgreSQL). */
    const newStore = async (name: string) => ({ CACHE_DIR: path.join(dir, name), ...(await storeEnv()) });
    const cli = (env: Record<string, string>) =>
      spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli.js'), 'index', '--model', 'lrn_decomposed', '--dataset', 'many', '--k', '5'], {
        env: {
          ...process.env,
          MODELS_DIR: FIXTURE_MODELS,
          DATASETS_DIR: path.join(dir, 'datasets'),
          MAX_BATCH: '2',
          INDEX_CHECKPOINT_MS: '0',
          LOG_LEVEL: 'warn',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const finish = (child: ReturnType<typeof cli>) => new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    /** The one job's state and progress, and its every top-k row, read through the store. */
    const tops = async (env: Record<string, string>) => {
      const store: IndexStore = env.DATABASE_URL ? await PostgresIndexStore.open(env.DATABASE_URL) : new SqliteIndexStore(env.CACHE_DIR);
      try {
        const jobs = await store.all();
        assert.equal(jobs.length, 1);
        return { rows: await store.tops(jobs[0].id), state: jobs.map((j) => ({ state: j.state, next_image: j.nextImage })) };
      } finally {
        await store.close();
      }
    };

    /** Resolves with the first progress count the indexer prints, once it reaches `at` (then kills it with SIGKILL, if `kill`). */
    const progress = (child: ReturnType<typeof cli>, at: number, kill: boolean) =>
      new Promise<number>((resolve, reject) => {
        let first: number | undefined;
        let progressed = 0;
        child.stderr.on('data', (chunk: Buffer) => {
          const match = /(\d+)\/240/.exec(chunk.toString().split('\n').filter(Boolean).pop() ?? '');
          if (match) progressed = Number(match[1]);
          first ??= match ? progressed : undefined;
          if (progressed >= at) {
            if (kill) child.kill('SIGKILL');
            resolve(first!);
          }
        });
        child.on('exit', () => (progressed >= at ? resolve(first!) : reject(new Error(`indexer exited before ${at} (${progressed})`))));
      });
    let whole: Record<string, string>;

    test('kill half-way, restart, compare with an uninterrupted run', async () => {
      whole = await newStore('whole');
      assert.equal(await finish(cli(whole)), 0);

      const killed = await newStore('killed');
      const child = cli(killed);
      await progress(child, 80, true);
      await finish(child);
      const interrupted = await tops(killed);
      assert.equal((interrupted.state[0] as { state: string }).state, 'RUNNING', 'the killed job is left RUNNING');
      const at = (interrupted.state[0] as { next_image: number }).next_image;
      assert.ok(at > 0 && at < 240, `killed at ${at} of 240`);

      assert.equal(await finish(cli(killed)), 0);
      const resumed = await tops(killed);
      const reference = await tops(whole);
      assert.deepEqual(resumed.state, [{ state: 'DONE', next_image: 240 }]);
      assert.ok(reference.rows.length > 0);
      assert.deepEqual(resumed.rows, reference.rows);
    }, 180_000);

    test('two indexers on one store run the job once: the second waits, and takes over when the first is killed', async () => {
      const shared = await newStore('shared');
      const first = cli(shared);
      await progress(first, 40, false);
      first.kill('SIGSTOP'); // holds the lease, frozen mid-job
      const second = cli({ ...shared, LOG_LEVEL: 'info', INDEX_LEASE_S: '3' }); // looks again every second
      const secondStarts = progress(second, 1, false);
      await new Promise<void>((resolve) => second.stdout.on('data', (d: Buffer) => /runs in another process/.test(d.toString()) && resolve()));
      assert.equal(second.exitCode, null, 'the second indexer waits while the first holds the job');
      first.kill('SIGKILL');
      await finish(first);
      const takenOverAt = await secondStarts;
      assert.ok(takenOverAt >= 40 && takenOverAt < 240, `the second indexer went on from the first's checkpoint (${takenOverAt}), not from 0`);
      assert.equal(await finish(second), 0);
      const done = await tops(shared);
      assert.deepEqual(done.state, [{ state: 'DONE', next_image: 240 }]);
      assert.deepEqual(done.rows, (await tops(whole)).rows, 'the same top-k as an uninterrupted run');
    }, 180_000);
  });

describe('the index database', () => {
  test('a database of the earlier row-per-entry layout is migrated, entries and order kept', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-migrate-'));
    try {
      const old = new Database(path.join(dir, 'index.sqlite'));
      old.exec(`CREATE TABLE top (index_id TEXT NOT NULL, layer TEXT NOT NULL, channel INTEGER NOT NULL, rank INTEGER NOT NULL,
        value REAL NOT NULL, image INTEGER NOT NULL, y INTEGER NOT NULL, x INTEGER NOT NULL, PRIMARY KEY (index_id, layer, channel, rank))`);
      const rows = [
        ['a', 'relu1', 0, 0, 3.5, 7, 1, 2],
        ['a', 'relu1', 0, 1, 2.25, 3, 0, 0],
        ['a', 'relu1', 1, 0, 1.125, 9, 4, 5],
        ['b', 'conv2', 3, 0, -0.5, 0, 2, 2],
      ];
      // Inserted out of rank order: the migration must order by rank.
      for (const r of [rows[1], rows[0], rows[2], rows[3]]) old.prepare('INSERT INTO top VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(...r);
      old.close();

      const store = new SqliteIndexStore(dir);
      const entry = (r: (string | number)[]) => ({ layer: r[1], channel: r[2], rank: r[3], value: r[4], image: r[5], y: r[6], x: r[7] });
      assert.deepEqual(await store.tops('a'), rows.slice(0, 3).map(entry));
      assert.deepEqual(await store.top('b', 'conv2', 3), [entry(rows[3])]);
      assert.deepEqual(await store.top('b', 'conv2', 4), []);
      assert.deepEqual(store.db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'top'").get(), { n: 0 });
      await store.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the Fig. 2 grid', () => {
  test('each projection and patch lands in its place, grey patches as grey, the rest white', async () => {
    // Tiles of 20×30 (scaled up) and of 90×60 (scaled down), each a PNG.
    const solid = async (value: number[], channels: 1 | 3, width = value[0] % 20 ? 20 : 90, height = width === 20 ? 30 : 60) => ({
      image: sharp(
        await sharp(
          Buffer.alloc(width * height * channels).map((_, i) => value[i % channels]),
          { raw: { width, height, channels } },
        )
          .png()
          .toBuffer(),
      ),
      width,
      height,
    });
    const colour = (f: number, i: number, patch: boolean) => [10 + 40 * f, 20 + 50 * i, patch ? 200 : 100];
    const k = 4;
    const filters = await Promise.all(
      [0, 1, 2].map(async (f) => ({
        projections: await Promise.all([0, 1, 2, 3].map((i) => solid(colour(f, i, false), 3))),
        // Filter 2's patches are grey images (one channel).
        patches: await Promise.all([0, 1, 2, 3].map((i) => (f === 2 ? solid([30 + 40 * i], 1) : solid(colour(f, i, true), 3)))),
      })),
    );
    const { data, info } = await sharp(await topGridPng(filters, k, 48))
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.equal(info.channels, 3);
    const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    // Layout: 2 blocks per row; a block is 2×2 projections, 4 px, 2×2 patches; tiles 48 + 1 px apart.
    const half = 2 * 48 + 1;
    for (let f = 0; f < 3; f++) {
      const x0 = (f % 2) * (2 * half + 4 + 10);
      const y0 = Math.floor(f / 2) * (half + 10);
      for (let i = 0; i < k; i++) {
        const cx = x0 + (i % 2) * 49 + 24;
        const cy = y0 + Math.floor(i / 2) * 49 + 24;
        assert.deepEqual(at(cx, cy), colour(f, i, false), `filter ${f} projection ${i}`);
        const patch = f === 2 ? [30 + 40 * i, 30 + 40 * i, 30 + 40 * i] : colour(f, i, true);
        assert.deepEqual(at(cx + half + 4, cy), patch, `filter ${f} patch ${i}`);
      }
    }
    assert.deepEqual(at(info.width - 1, info.height - 1), [255, 255, 255], 'no fourth filter: white');
  });
});

describe('two sidecars over one .onnx file', () => {
  test('each model normalises with its own sidecar, in index jobs and in prepared inputs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-sidecars-'));
    try {
      const models = path.join(dir, 'models');
      fs.mkdirSync(models);
      const sidecar = JSON.parse(fs.readFileSync(path.join(FIXTURE_MODELS, 'lrn_decomposed.json'), 'utf8'));
      for (const [name, mean] of [
        ['plain', sidecar.input.mean],
        ['shifted', [0.1, 0.2, 0.3]],
      ] as const) {
        fs.copyFileSync(path.join(FIXTURE_MODELS, 'lrn_decomposed.onnx'), path.join(models, `${name}.onnx`));
        fs.writeFileSync(path.join(models, `${name}.json`), JSON.stringify({ ...sidecar, input: { ...sidecar.input, mean } }));
      }
      await makeDataset(path.join(dir, 'datasets', 'few'), 6, 32, 32);
      const server = await startTestServer({ MODELS_DIR: models, DATASETS_DIR: path.join(dir, 'datasets') });
      try {
        const { registry, datasets, jobs, inference } = server.services;
        const [plain, shifted] = ['plain', 'shifted'].map((n) => registry.models.get(n)!);
        assert.equal(plain.sha256, shifted.sha256, 'one .onnx file');
        const layer = plain.layers.find((l) => l.kind === 'CONV')!.name;
        const dataset = datasets.datasets.get('few')!;
        // Index both (one after the other: the second finds the first's graph loaded, were it keyed by the .onnx alone).
        const tops = [];
        for (const model of [plain, shifted]) {
          const job = await jobs.start(model, dataset, [layer], 3);
          assert.equal((await jobs.wait(job.id))?.state, 'DONE');
          tops.push(await jobs.store.top(job.id, layer, 0));
        }
        assert.notDeepEqual(
          tops[0].map((t) => t.value),
          tops[1].map((t) => t.value),
          'different normalisation, different maxima',
        );
        // Each index agrees with its own model's activations (the prepared inputs of each sidecar).
        for (const [model, top] of [
          [plain, tops[0]],
          [shifted, tops[1]],
        ] as const) {
          const name = dataset.images[top[0].image].name;
          const act = await inference.activation(model, model.layerByName.get(layer)!, { sha256: `img-${name}`, bytes: datasets.read(dataset, name) });
          const [, H, W] = model.layerByName.get(layer)!.outputShape;
          assert.equal(act[top[0].y * W + top[0].x], top[0].value, `${model.name}: index = activation`);
          assert.equal(Math.max(...act.subarray(0, H * W)), top[0].value);
        }
      } finally {
        await server.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
