/**
 * What changes over time is never cached (resolvers/cache-control.ts): a job polled through
 * node(id) or jobs over HTTP, with the response cache on, is seen running and then done; such
 * answers say `Cache-Control: no-store`; an index built or rebuilt, and models and datasets
 * changed before a restart, show in the next identical query.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { JOB_STATES } from '../src/index/store';
import { errorCode, FIXTURE_MODELS, FIXTURES, GqlResult, makeDataset, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;

/** A POST to /graphql, with the headers that caches read. */
async function post(url: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as GqlResult;
  return { body, cacheControl: res.headers.get('cache-control'), age: res.headers.get('age') };
}

/** The data of an answer without errors. */
function data(answer: { body: GqlResult }) {
  assert.equal(answer.body.errors, undefined, JSON.stringify(answer.body.errors));
  return answer.body.data;
}

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

const NODE_JOB = 'query($id: ID!) { node(id: $id) { ... on Job { state imagesDone imagesTotal } } }';
const JOBS = '{ jobs { id state imagesDone imagesTotal } }';

describe('a job polled over HTTP, with the response cache on', () => {
  let server: Server;
  let datasetsDir: string;
  const IMAGES = 48;

  beforeAll(async () => {
    datasetsDir = tmp('convscope-freshness-');
    // One image per ORT run and a checkpoint after each: progress moves 48 times.
    await makeDataset(path.join(datasetsDir, 'many'), IMAGES, 320, 240);
    server = await startTestServer({ DATASETS_DIR: datasetsDir, RESPONSE_CACHE: 'on', MAX_BATCH: '1', INDEX_CHECKPOINT_MS: '0' });
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(datasetsDir, { recursive: true, force: true });
  });

  test('node(id) and jobs show every state up to DONE with the final counts', async () => {
    const start = data(await post(server.url, 'mutation { buildIndex(model: "alexnet", dataset: "many", k: 3) { id state imagesTotal } }')).buildIndex;
    assert.equal(start.imagesTotal, IMAGES);
    type Seen = { state: string; imagesDone: number; imagesTotal: number };
    const byNode: Seen[] = [];
    const byJobs: Seen[] = [];
    const deadline = Date.now() + 100_000;
    while (byNode.at(-1)?.state !== 'DONE' || byJobs.at(-1)?.state !== 'DONE') {
      assert.ok(Date.now() < deadline, `no DONE after 100 s: node(id) last said ${JSON.stringify(byNode.at(-1))}, jobs ${JSON.stringify(byJobs.at(-1))}`);
      const node = await post(server.url, NODE_JOB, { id: start.id });
      byNode.push(data(node).node);
      const jobs = await post(server.url, JOBS);
      const { id: _id, ...job } = data(jobs).jobs.find((j: { id: string }) => j.id === start.id);
      byJobs.push(job);
      for (const answer of [node, jobs]) assert.equal(answer.age, null, 'answered by the resolvers, not by the response cache');
    }
    for (const [via, seen] of [
      ['node(id)', byNode],
      ['jobs', byJobs],
    ] as const) {
      const trace = `${via}: ${JSON.stringify(seen)}`;
      const states = seen.map((s) => JOB_STATES.indexOf(s.state as (typeof JOB_STATES)[number]));
      assert.deepEqual(
        states,
        [...states].sort((a, b) => a - b),
        `states only move forward; ${trace}`,
      );
      const done = seen.map((s) => s.imagesDone);
      assert.deepEqual(
        done,
        [...done].sort((a, b) => a - b),
        `imagesDone only grows; ${trace}`,
      );
      assert.ok(
        seen.some((s) => s.state === 'RUNNING' && s.imagesDone > 0 && s.imagesDone < IMAGES),
        `seen RUNNING with some images done; ${trace}`,
      );
      assert.ok(new Set(done).size >= 3, `progress seen moving; ${trace}`);
      assert.deepEqual(seen.at(-1), { state: 'DONE', imagesDone: IMAGES, imagesTotal: IMAGES }, trace);
    }
  }, 120_000);

  test('Cache-Control: no-store for jobs, the hint of its object for node(id)', async () => {
    const { jobs } = data(await post(server.url, '{ jobs { id } }'));
    const header = async (query: string, variables: Record<string, unknown> = {}) => {
      const answer = await post(server.url, query, variables);
      data(answer);
      return answer.cacheControl;
    };
    assert.equal(await header(NODE_JOB, { id: jobs[0].id }), 'no-store');
    assert.equal(await header(JOBS), 'no-store');
    const ids = data(await post(server.url, '{ model(name: "alexnet") { id } dataset(name: "many") { id } }'));
    assert.equal(
      await header('query($id: ID!) { node(id: $id) { id ... on Model { name } } }', { id: ids.model.id }),
      'max-age=3600, public',
      'a Model by ID is cacheable',
    );
    assert.equal(await header('query($id: ID!) { node(id: $id) { id ... on Dataset { size } } }', { id: ids.dataset.id }), 'no-store');
    for (const list of [
      '{ models { nodes { name } } }',
      '{ modelErrors { file } }',
      '{ datasets { nodes { name size } } }',
      '{ model(name: "alexnet") { snapshots { name } } }',
    ]) {
      assert.equal(await header(list), 'no-store', list);
    }
  });
});

describe('an index built between two identical queries', () => {
  let server: Server;
  let datasetsDir: string;
  const LAYER = '/features/features.1/Relu';
  const TOP = `{ model(name: "alexnet") { layer(name: "${LAYER}") { filter(index: 0) { topActivations(dataset: "few", first: 10) { totalCount nodes { rank image { name } } } } } } }`;
  const GRID = `{ model(name: "alexnet") { layer(name: "${LAYER}") { topActivationsGrid(dataset: "few", first: 1, k: 2) } } }`;

  beforeAll(async () => {
    datasetsDir = tmp('convscope-freshness-');
    await makeDataset(path.join(datasetsDir, 'few'), 5, 64, 48);
    server = await startTestServer({ DATASETS_DIR: datasetsDir, RESPONSE_CACHE: 'on' });
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(datasetsDir, { recursive: true, force: true });
  });

  const build = async (k: number) => {
    const { buildIndex } = data(await post(server.url, `mutation { buildIndex(model: "alexnet", dataset: "few", layers: ["${LAYER}"], k: ${k}) { id } }`));
    const deadline = Date.now() + 30_000;
    for (let state = ''; state !== 'DONE';) {
      assert.ok(Date.now() < deadline, `no DONE after 30 s: node(id) says ${state}`);
      state = data(await post(server.url, NODE_JOB, { id: buildIndex.id })).node.state;
    }
  };

  test('INDEX_NOT_BUILT, then the index, then the newer index', async () => {
    for (let i = 0; i < 2; i++) {
      const notBuilt = await post(server.url, TOP);
      assert.equal(errorCode(notBuilt.body), 'INDEX_NOT_BUILT');
      assert.equal(notBuilt.cacheControl, 'no-store');
    }
    await build(2);
    const first = await post(server.url, TOP);
    assert.equal(data(first).model.layer.filter.topActivations.totalCount, 2);
    assert.equal(first.cacheControl, 'no-store');
    const grid = await post(server.url, GRID);
    assert.match(data(grid).model.layer.topActivationsGrid, /^\/img\//);
    assert.equal(grid.cacheControl, 'no-store');
    await build(3);
    const second = await post(server.url, TOP);
    assert.equal(second.age, null);
    assert.equal(data(second).model.layer.filter.topActivations.totalCount, 3, 'the newest index answers');
  });
});

describe('models and datasets changed before a restart', () => {
  const MODEL = '{ model(name: "m") { sha256 inputShape } }';
  const IMAGE = 'query($id: ID!) { node(id: $id) { ... on Image { sha256 width height } } }';
  const QUERIES = [
    '{ models { nodes { name } } }',
    '{ modelErrors { file } }',
    MODEL,
    '{ datasets { nodes { name size } } }',
    '{ dataset(name: "d") { size fingerprint } }',
    IMAGE,
  ];
  let dirs: { models: string; datasets: string; cache: string };

  const copyModel = (from: string, to: string) => {
    for (const ext of ['onnx', 'json']) fs.copyFileSync(path.join(FIXTURE_MODELS, `${from}.${ext}`), path.join(dirs.models, `${to}.${ext}`));
  };
  /** Each query's answer (twice, so that cacheable ones are in the response cache). */
  const answers = async () => {
    const server = await startTestServer({ MODELS_DIR: dirs.models, DATASETS_DIR: dirs.datasets, CACHE_DIR: dirs.cache, RESPONSE_CACHE: 'on' });
    try {
      const { dataset } = data(await post(server.url, '{ dataset(name: "d") { images(first: 1) { nodes { id } } } }'));
      const variables = { id: dataset.images.nodes[0].id };
      const result: unknown[] = [];
      for (const query of QUERIES) {
        await post(server.url, query, variables);
        const again = await post(server.url, query, variables);
        if (query === MODEL || query === IMAGE) assert.notEqual(again.age, null, `${query}: kept by the response cache`);
        else assert.equal(again.cacheControl, 'no-store', query);
        result.push(data(again));
      }
      return result;
    } finally {
      await server.close();
    }
  };

  beforeAll(() => {
    dirs = { models: tmp('convscope-models-'), datasets: tmp('convscope-datasets-'), cache: tmp('convscope-cache-') };
  });
  afterAll(() => {
    for (const dir of Object.values(dirs)) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the next start answers the same queries from the new files', async () => {
    copyModel('misc', 'm');
    const [first] = await makeDataset(path.join(dirs.datasets, 'd'), 2, 40, 30);
    const [models, errors, model, datasets, dataset, image] = (await answers()) as any[];
    assert.deepEqual(models.models.nodes, [{ name: 'm' }]);
    assert.deepEqual(errors.modelErrors, []);
    assert.deepEqual(model.model.inputShape, [3, 37, 37]);
    assert.deepEqual(datasets.datasets.nodes, [{ name: 'd', size: 2 }]);
    assert.equal(image.node.width, 40);

    // The datasets change, the models do not.
    const picture = await sharp({ create: { width: 24, height: 20, channels: 3, background: '#3a7' } })
      .png()
      .toBuffer();
    fs.writeFileSync(path.join(dirs.datasets, 'd', first), picture); // another image under the same name
    fs.writeFileSync(path.join(dirs.datasets, 'd', 'z.png'), picture);
    await makeDataset(path.join(dirs.datasets, 'e'), 1, 40, 30);
    const [models2, errors2, model2, datasets2, dataset2, image2] = (await answers()) as any[];
    assert.deepEqual([models2, errors2, model2], [models, errors, model]);
    assert.deepEqual(datasets2.datasets.nodes, [
      { name: 'd', size: 3 },
      { name: 'e', size: 1 },
    ]);
    assert.equal(dataset2.dataset.size, 3);
    assert.notEqual(dataset2.dataset.fingerprint, dataset.dataset.fingerprint);
    assert.deepEqual([image2.node.width, image2.node.height], [24, 20]);
    assert.notEqual(image2.node.sha256, image.node.sha256);

    // The models change, the datasets do not.
    copyModel('squeezenet', 'm'); // another file under the same name
    copyModel('lrn_decomposed', 'n');
    fs.copyFileSync(path.join(FIXTURES, 'bad', 'not-onnx.onnx'), path.join(dirs.models, 'broken.onnx'));
    const [models3, errors3, model3, datasets3, dataset3, image3] = (await answers()) as any[];
    assert.deepEqual(models3.models.nodes.map((m: { name: string }) => m.name).sort(), ['m', 'n']);
    assert.deepEqual(errors3.modelErrors, [{ file: 'broken.onnx' }]);
    assert.notEqual(model3.model.sha256, model.model.sha256);
    assert.deepEqual(model3.model.inputShape, [3, 64, 64]);
    assert.deepEqual([datasets3, dataset3, image3], [datasets2, dataset2, image2]);
  }, 120_000);
});
