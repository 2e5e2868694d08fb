/**
 * The model the project ships (models/fashion-zfnet.onnx, trained by
 * scripts/train_default_model.py) on the demo dataset it ships: its accuracy equals the model
 * card's figure within one point, it has every AlexNet building block, and the top-9 index it
 * asks for is built on start-up.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { assertPixelGraphsMatch, gql, ROOT, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;

describe('the default model on the demo dataset', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer({ MODELS_DIR: path.join(ROOT, 'models'), DATASETS_DIR: path.join(ROOT, 'datasets') });
  });
  afterAll(() => server.close());

  // First, while the index job started with the server is still early in its 1000 images.
  test('while that index is being built, INDEX_NOT_BUILT names its job, with its ID and progress', async () => {
    const top = await gql(
      server.url,
      `{ model(name: "fashion-zfnet") { layers(kinds: [RELU], first: 1) { nodes { filter(index: 0) { topActivations(dataset: "fashion-mnist-demo") { totalCount } } } } } }`,
    );
    const error = top.errors?.[0];
    assert.equal(error?.extensions?.code, 'INDEX_NOT_BUILT', JSON.stringify(top));
    const job = error!.extensions!.job as { id: string; state: string; imagesDone: number; imagesTotal: number };
    assert.ok(job, `the error names the running job: ${JSON.stringify(error)}`);
    assert.match(job.state, /^(QUEUED|RUNNING)$/);
    assert.equal(job.imagesTotal, 1000);
    assert.ok(job.imagesDone < 1000);
    assert.ok(error!.message.includes(job.id) && error!.message.includes('being built') && !error!.message.includes('buildIndex'), error!.message);
    const same = await gql(server.url, `query($id: ID!) { node(id: $id) { ... on Job { model dataset imagesTotal } } }`, { id: job.id });
    assert.deepEqual(same.data.node, { model: 'fashion-zfnet', dataset: 'fashion-mnist-demo', imagesTotal: 1000 });
  });

  test('its index graph (8-bit grey pixels in) normalises exactly as preprocess() does', async () => {
    const grey = (channels: 1 | 3) => {
      const raw = Buffer.from(Array.from({ length: 40 * 30 * channels }, (_, i) => (i * 37) % 251));
      return sharp(raw, { raw: { width: 40, height: 30, channels } })
        .png()
        .toBuffer();
    };
    await assertPixelGraphsMatch(server.services, 'fashion-zfnet', grey);
  });

  test('it loads with every AlexNet building block and its training snapshots', async () => {
    const res = await gql(
      server.url,
      `{ model(name: "fashion-zfnet") { inputShape labels layers(first: 100) { nodes { op } } snapshots { name epoch } } modelErrors { file message } }`,
    );
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    assert.deepEqual(res.data.modelErrors, []);
    const model = res.data.model;
    assert.deepEqual(model.inputShape, [1, 28, 28]);
    assert.equal(model.labels.length, 10);
    const ops = new Set(model.layers.nodes.map((n: { op: string }) => n.op));
    for (const op of ['Conv', 'Relu', 'LRN', 'MaxPool', 'Gemm']) assert.ok(ops.has(op), `has ${op}`);
    const graph = server.services.registry.models.get('fashion-zfnet')!.graph;
    assert.ok(
      graph.nodes.some((n) => n.op === 'Conv' && (n.proto.attribute ?? []).some((a) => a.name === 'group' && Number(a.i) === 2)),
      'a grouped conv (groups = 2)',
    );
    assert.ok(model.snapshots.length >= 3, 'training snapshots');
    assert.deepEqual(
      model.snapshots.map((s: { epoch: number }) => s.epoch),
      [...model.snapshots.map((s: { epoch: number }) => s.epoch)].sort((a: number, b: number) => a - b),
    );
  });

  test("its accuracy on the 1000 demo images equals the model card's within one point", async () => {
    const model = server.services.registry.models.get('fashion-zfnet')!;
    const dataset = server.services.datasets.datasets.get('fashion-mnist-demo')!;
    assert.equal(dataset.images.length, 1000);
    const labels = model.labels;
    let correct = 0;
    await Promise.all(
      dataset.images.map(async (img) => {
        const bytes = fs.readFileSync(path.join(dataset.dir, img.name));
        const p = await server.services.inference.predict(model, { sha256: createHash('sha256').update(bytes).digest('hex'), bytes });
        let best = 0;
        for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
        if (labels[best] === img.label) correct++;
      }),
    );
    const accuracy = correct / 1000;
    const card = fs.readFileSync(path.join(ROOT, 'models', 'fashion-zfnet.md'), 'utf8');
    const sidecar = JSON.parse(fs.readFileSync(path.join(ROOT, 'models', 'fashion-zfnet.json'), 'utf8'));
    assert.ok(Math.abs(accuracy - sidecar.accuracy.demo) <= 0.01, `measured ${accuracy}, sidecar says ${sidecar.accuracy.demo}`);
    assert.ok(card.includes(sidecar.accuracy.demo.toFixed(4)) || card.includes((sidecar.accuracy.demo * 100).toFixed(1)), 'the card states the demo accuracy');
    assert.ok(accuracy >= 0.88, `accuracy ${accuracy}`);
  });

  test('the top-9 index the sidecar asks for is built in the background on start-up', async () => {
    let jobs: { state: string; model: string; dataset: string }[] = [];
    for (let i = 0; i < 240; i++) {
      jobs = (await gql(server.url, `{ jobs { state model dataset imagesDone } }`)).data.jobs;
      if (jobs.some((j) => j.model === 'fashion-zfnet' && j.state === 'DONE')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(
      jobs.some((j) => j.model === 'fashion-zfnet' && j.dataset === 'fashion-mnist-demo' && j.state === 'DONE'),
      JSON.stringify(jobs),
    );
    const top = await gql(
      server.url,
      `{ model(name: "fashion-zfnet") { layers(kinds: [RELU], first: 1) { nodes { filter(index: 0) { topActivations(dataset: "fashion-mnist-demo") { totalCount nodes { value image { label } patchUrl } } } } } } }`,
    );
    assert.equal(top.errors, undefined, JSON.stringify(top.errors));
    assert.equal(top.data.model.layers.nodes[0].filter.topActivations.totalCount, 9);
  }, 120_000);
});
