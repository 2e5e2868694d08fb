/**
 * Projections through today's architectures (EfficientNet, MobileNetV3, RegNetY, ConvNeXt,
 * ShuffleNetV2, MnasNet, ViT), small fixtures built with torchvision 0.14's own classes, against
 * PyTorch autograd with only the ReLU family's backward overridden (scripts/make_modern_fixtures.py).
 * Tolerance: max |ours − torch| ≤ 1e-4 · max |torch|, and the same position of the largest |value|.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { loadConfig } from '../src/config';
import { project } from '../src/engine/projections';
import { createServices, Services } from '../src/service/services';
import { gql, makeDataset, startTestServer } from './helpers';
import { assertMatchesCase, loadManifest, loadNpy, MODERN, MODERN_REFERENCE } from './reference';

const TOLERANCE = 1e-4;
const manifest = loadManifest(MODERN_REFERENCE);
const families = Object.keys(manifest.models);

describe('modern architectures: projections match PyTorch', () => {
  let s: Services;
  beforeAll(async () => {
    s = await createServices(loadConfig({ MODELS_DIR: path.join(MODERN, 'models'), CACHE_DIR: '/tmp/convscope-test-modern', LOG_LEVEL: 'silent' }));
  });
  afterAll(() => s.engine.close());

  test('every family loads, with no model errors', () => {
    assert.deepEqual(s.registry.errors, []);
    assert.deepEqual([...s.registry.models.keys()].sort(), [...families].sort());
  });

  test('every family has every method × seed mode', () => {
    for (const family of families) {
      const cases = manifest.cases.filter((c) => c.model === family);
      const pairs = new Set(cases.map((c) => `${c.method}/${c.seed}`));
      assert.equal(pairs.size, 9, `${family}: ${[...pairs].join(', ')}`);
    }
  });

  for (const c of manifest.cases) {
    test(c.id, async () => {
      const model = s.registry.models.get(c.model)!;
      const input = loadNpy(manifest.models[c.model].input, MODERN_REFERENCE).data;
      const layer = model.layers.find((l) => l.tensor === c.targetOutput);
      assert.ok(layer, `${c.target} is served as a layer`);
      const result = await project(s.engine, model, {
        target: c.targetOutput,
        method: c.method,
        lrn: c.lrn,
        image: { key: c.model, data: input },
        channel: c.channel,
        seed: c.seed,
        position: c.position ?? undefined,
      });
      assertMatchesCase(result, c, MODERN_REFERENCE, TOLERANCE);
    });
  }
});

describe('token layers over GraphQL (ViT): D channels over T token positions', () => {
  const LAYER = '/encoder/layers/encoder_layer_0/Add_1';
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let datasetsDir: string;
  beforeAll(async () => {
    datasetsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-vit-'));
    await makeDataset(path.join(datasetsDir, 'small'), 6, 32, 32);
    server = await startTestServer({ MODELS_DIR: path.join(MODERN, 'models'), DATASETS_DIR: datasetsDir });
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(datasetsDir, { recursive: true, force: true });
  });

  const UNIT = `query($image: ImageInput!, $layer: String!) { model(name: "vit") { layer(name: $layer) { outputShape filterCount
    filter(index: 5) { activation(image: $image) { max position { y x } } projection(image: $image) { seedValue position { y x } } } } } }`;

  test('a layer [17, 32] has 32 filters; a unit is (token, channel) at position { y: token, x: 0 }; its projection seeds its maximum', async () => {
    const image = { base64: fs.readFileSync(path.join(datasetsDir, 'small', 'img-003.png')).toString('base64') };
    const res = await gql(server.url, UNIT, { image, layer: LAYER });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const layer = res.data.model.layer;
    assert.deepEqual(layer.outputShape, [17, 32]);
    assert.equal(layer.filterCount, 32);
    const { activation, projection } = layer.filter;
    assert.equal(activation.position.x, 0);
    assert.ok(activation.position.y >= 0 && activation.position.y < 17);
    assert.deepEqual(projection.position, activation.position);
    assert.ok(Math.abs(projection.seedValue - activation.max) <= 1e-5 * Math.max(1, Math.abs(activation.max)));
  });

  test('an index of a token layer ranks each channel by its largest token, and the top image agrees with its activation', async () => {
    const start = await gql(server.url, `mutation($layers: [String!]) { buildIndex(model: "vit", dataset: "small", layers: $layers, k: 3) { id } }`, {
      layers: [LAYER],
    });
    assert.equal(start.errors, undefined, JSON.stringify(start.errors));
    const id = start.data.buildIndex.id;
    const deadline = Date.now() + 60_000;
    let state = '';
    while (state !== 'DONE' && Date.now() < deadline) {
      state = (await gql(server.url, `query($id: ID!) { node(id: $id) { ... on Job { state } } }`, { id })).data.node.state;
      if (state !== 'DONE') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(state, 'DONE');
    const top = await gql(
      server.url,
      `query($layer: String!) { model(name: "vit") { layer(name: $layer) { filter(index: 5) {
      topActivations(dataset: "small") { nodes { value position { y x } image { id } } } } } } }`,
      { layer: LAYER },
    );
    assert.equal(top.errors, undefined, JSON.stringify(top.errors));
    const nodes = top.data.model.layer.filter.topActivations.nodes;
    assert.equal(nodes.length, 3);
    for (const [i, n] of nodes.entries()) {
      assert.equal(n.position.x, 0);
      if (i > 0) assert.ok(n.value <= nodes[i - 1].value);
    }
    const best = await gql(server.url, UNIT, { image: { id: nodes[0].image.id }, layer: LAYER });
    const activation = best.data.model.layer.filter.activation;
    assert.ok(Math.abs(activation.max - nodes[0].value) <= 1e-5 * Math.max(1, Math.abs(activation.max)), `${activation.max} vs ${nodes[0].value}`);
    assert.deepEqual(nodes[0].position, activation.position);
  });
});
