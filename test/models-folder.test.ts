/**
 * The models folder is read again while the server runs (MODELS_RESCAN_S): a model dropped in,
 * replaced or removed is served, served anew or gone without a restart, and a file still being
 * written is not loaded half-written.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { FIXTURE_MODELS, FIXTURES, gql, makeDataset, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;

const MODELS = `{ models(first: 50) { nodes { name sha256 } } modelErrors { file message } }`;

/** Polls the API until `done` holds for its answer (rescans run every 0.2 s here). */
async function until(server: Server, done: (data: { models: { nodes: { name: string; sha256: string }[] }; modelErrors: { file: string }[] }) => boolean) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await gql(server.url, MODELS);
    if (done(res.data)) return res.data;
    if (Date.now() > deadline) throw new Error(`not reached: ${JSON.stringify(res.data)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const copy = (name: string, dir: string, as = name) => {
  fs.copyFileSync(path.join(FIXTURE_MODELS, `${name}.onnx`), path.join(dir, `${as}.onnx`));
  fs.copyFileSync(path.join(FIXTURE_MODELS, `${name}.json`), path.join(dir, `${as}.json`));
};

describe('models folder changes take effect without a restart', () => {
  let dir: string;
  let server: Server;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-models-'));
    copy('vgg', dir);
    await makeDataset(path.join(`${dir}-datasets`, 'tiny'), 3, 64, 48);
    server = await startTestServer({
      MODELS_DIR: dir,
      DATASETS_DIR: `${dir}-datasets`,
      MODELS_RESCAN_S: '0.2',
      RESPONSE_CACHE: 'on',
      RETIRED_WEIGHTS_S: '0.5',
    });
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(`${dir}-datasets`, { recursive: true, force: true });
  });

  test('a model dropped in is served, and projects', async () => {
    const names = (d: { models: { nodes: { name: string }[] } }) => d.models.nodes.map((n) => n.name).sort();
    assert.deepEqual(names(await until(server, () => true)), ['vgg']);
    copy('resnet', dir, 'added');
    await until(server, (d) => names(d).join() === 'added,vgg');
    const res = await gql(server.url, `{ model(name: "added") { layers(first: 1) { nodes { filter(index: 0) { weights { shape } } } } } }`);
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
  });

  test('a model dropped in with "autoIndex" in its sidecar gets that index built', async () => {
    fs.copyFileSync(path.join(FIXTURE_MODELS, 'alexnet.onnx'), path.join(dir, 'indexed.onnx'));
    const sidecar = JSON.parse(fs.readFileSync(path.join(FIXTURE_MODELS, 'alexnet.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'indexed.json'), JSON.stringify({ ...sidecar, autoIndex: ['tiny'] }));
    const deadline = Date.now() + 30_000;
    let jobs: { model: string; dataset: string; state: string; imagesDone: number }[] = [];
    while (!jobs.some((j) => j.model === 'indexed' && j.state === 'DONE')) {
      if (Date.now() > deadline) throw new Error(`no DONE index job for the dropped-in model: ${JSON.stringify(jobs)}`);
      await new Promise((r) => setTimeout(r, 200));
      jobs = (await gql(server.url, `{ jobs { model dataset state imagesDone } }`)).data.jobs;
    }
    assert.deepEqual(
      jobs.filter((j) => j.model === 'indexed').map((j) => [j.dataset, j.state, j.imagesDone]),
      [['tiny', 'DONE', 3]],
    );
    const top = await gql(
      server.url,
      `{ model(name: "indexed") { layers(first: 1) { nodes { filter(index: 0) { topActivations(dataset: "tiny", first: 1) { totalCount } } } } } }`,
    );
    assert.equal(top.errors, undefined, JSON.stringify(top.errors));
    fs.rmSync(path.join(dir, 'indexed.onnx'));
    fs.rmSync(path.join(dir, 'indexed.json'));
  });

  test('a model replaced under the same name is served anew (the response cache follows), and its old weights file removed a while later', async () => {
    const sha = (d: { models: { nodes: { name: string; sha256: string }[] } }, name: string) => d.models.nodes.find((n) => n.name === name)?.sha256;
    const query = `{ model(name: "added") { sha256 inputShape } }`;
    const before = await gql(server.url, query);
    const weightsOf = (name: string) => server.services.registry.models.get(name)?.graph.weightsFile;
    const replaced = weightsOf('added')!;
    const kept = weightsOf('vgg')!;
    assert.ok(fs.existsSync(replaced) && fs.existsSync(kept), 'the large weights of both models in their files');
    copy('squeezenet', dir, 'added');
    const expected = (await import('node:crypto'))
      .createHash('sha256')
      .update(fs.readFileSync(path.join(dir, 'added.onnx')))
      .digest('hex');
    await until(server, (d) => sha(d, 'added') === expected);
    const after = await gql(server.url, query);
    assert.notEqual(after.data.model.sha256, before.data.model.sha256);
    assert.equal(after.data.model.sha256, expected);
    // The replaced model's weights file goes RETIRED_WEIGHTS_S (0.5 s here) after it was replaced; a served model's stays.
    const deadline = Date.now() + 10_000;
    while (fs.existsSync(replaced) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!fs.existsSync(replaced), `${replaced} removed`);
    assert.ok(fs.existsSync(kept));
  });

  test("a model's weights file removed while it is served (CACHE_DIR cleaned) is written again at the next scan, and the model projects", async () => {
    const weights = server.services.registry.models.get('vgg')!.graph.weightsFile!;
    fs.rmSync(weights);
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(weights) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(fs.existsSync(weights), `${weights} written again`);
    const image = { base64: fs.readFileSync(path.join(`${dir}-datasets`, 'tiny', 'img-000.png')).toString('base64') };
    const res = await gql(
      server.url,
      `query($image: ImageInput!) { model(name: "vgg") { layers(first: 1) { nodes { filter(index: 3) { projection(image: $image) { seedValue } } } } } }`,
      { image },
    );
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    assert.ok(Number.isFinite(res.data.model.layers.nodes[0].filter.projection.seedValue));
  });

  test('a removed model is gone (NOT_FOUND), and a broken file is listed in modelErrors, then fixed in place', async () => {
    fs.rmSync(path.join(dir, 'added.onnx'));
    fs.rmSync(path.join(dir, 'added.json'));
    await until(server, (d) => !d.models.nodes.some((n) => n.name === 'added'));
    const gone = await gql(server.url, `{ model(name: "added") { name } }`);
    assert.equal(gone.errors?.[0]?.extensions?.code, 'NOT_FOUND');
    fs.writeFileSync(path.join(dir, 'broken.onnx'), 'not a model');
    await until(server, (d) => d.modelErrors.some((e) => e.file === 'broken.onnx'));
    fs.copyFileSync(path.join(FIXTURE_MODELS, 'misc.onnx'), path.join(dir, 'broken.onnx'));
    fs.copyFileSync(path.join(FIXTURE_MODELS, 'misc.json'), path.join(dir, 'broken.json'));
    const fixed = await until(server, (d) => d.models.nodes.some((n) => n.name === 'broken'));
    assert.deepEqual(fixed.modelErrors, []);
  });

  test('a TF.js layers-model folder dropped in is served; a weight shard rewritten in place is served anew; removed, it is gone', async () => {
    const folder = path.join(dir, 'tfjs');
    fs.cpSync(path.join(FIXTURES, 'tfjs', 'models', 'vgg'), folder, { recursive: true });
    const sha = (d: { models: { nodes: { name: string; sha256: string }[] } }) => d.models.nodes.find((n) => n.name === 'tfjs')?.sha256;
    const first = sha(await until(server, (d) => sha(d) !== undefined));
    // The last shard holds the classifier's weights: a changed value there is another model.
    const shard = path.join(folder, 'group1-shard5of5.bin');
    const bytes = fs.readFileSync(shard);
    bytes.writeFloatLE(bytes.readFloatLE(0) + 1, 0);
    fs.writeFileSync(shard, bytes);
    await until(server, (d) => sha(d) !== undefined && sha(d) !== first);
    fs.rmSync(folder, { recursive: true });
    await until(server, (d) => sha(d) === undefined);
  });

  test('a file still growing is loaded only once two scans see it the same', async () => {
    const bytes = fs.readFileSync(path.join(FIXTURE_MODELS, 'zfnet.onnx'));
    const file = path.join(dir, 'growing.onnx');
    // Written in pieces, faster than two rescans apart: never listed as an error or half a model.
    const seen = new Set<string>();
    for (let i = 1; i <= 4; i++) {
      fs.writeFileSync(file, bytes.subarray(0, Math.floor((bytes.length * i) / 4)));
      await new Promise((r) => setTimeout(r, 50));
      for (const e of server.services.registry.errors) seen.add(e.file);
    }
    await until(server, (d) => d.models.nodes.some((n) => n.name === 'growing'));
    assert.ok(!seen.has('growing.onnx'), 'no error for the half-written file');
  });
});
