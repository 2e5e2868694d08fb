/**
 * What units respond to and how models compare, on the default model (fashion-zfnet, its
 * snapshots and the demo dataset): selectivity against a count over the index, topUnits against
 * a ranking of activations computed here, compare of a model with itself and between snapshots
 * against Pearson's r computed here, invariance at the identity against predict, and the error
 * codes of bad arguments.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { compileForward } from '../src/compiler/forward';
import { preprocess } from '../src/images/preprocess';
import { errorCode, gql, ROOT, FIXTURE_MODELS, startTestServer } from './helpers';

const MODEL = 'fashion-zfnet';
const DATASET = 'fashion-mnist-demo';
const imageId = (name: string) => Buffer.from(JSON.stringify(['Image', 'dataset', DATASET, name])).toString('base64url');
const IMAGE = imageId('test-00000.png'); // an "Ankle boot"

let server: Awaited<ReturnType<typeof startTestServer>>;
let modelsDir: string;

beforeAll(async () => {
  // The default model with its snapshots, and a fixture whose /conv1/Conv has another shape.
  modelsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-analysis-models-'));
  for (const f of ['fashion-zfnet.onnx', 'fashion-zfnet.json', 'fashion-zfnet.snapshots'])
    fs.symlinkSync(path.join(ROOT, 'models', f), path.join(modelsDir, f));
  for (const f of ['lrn_decomposed.onnx', 'lrn_decomposed.json']) fs.symlinkSync(path.join(FIXTURE_MODELS, f), path.join(modelsDir, f));
  server = await startTestServer({
    MODELS_DIR: modelsDir,
    DATASETS_DIR: path.join(ROOT, 'datasets'),
    MAX_COMPARE_UNITS: '64',
    MAX_COMPARE_IMAGES: '500',
    MAX_INVARIANCE_STEPS: '32',
  });
  // The sidecar's index (every Conv and ReLU) is built in the background on start-up.
  for (let i = 0; i < 240; i++) {
    const jobs = (await gql(server.url, `{ jobs { state model } }`)).data.jobs as { state: string; model: string }[];
    if (jobs.some((j) => j.model === MODEL && j.state === 'DONE')) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the default index was not built within two minutes');
});

afterAll(async () => {
  await server?.close();
  fs.rmSync(modelsDir, { recursive: true, force: true });
});

/** The labels' most frequent (ties: the first seen), its share and their entropy in bits, counted here. */
function count(labels: string[]) {
  const counts: Record<string, number> = {};
  for (const l of labels) counts[l] = (counts[l] ?? 0) + 1;
  let best = labels[0];
  for (const l of labels) if (counts[l] > counts[best]) best = l;
  const entropy = -Object.values(counts).reduce((s, c) => s + (c / labels.length) * Math.log2(c / labels.length), 0);
  return { label: best, count: counts[best], share: counts[best] / labels.length, entropy };
}

describe('selectivity', () => {
  test("each unit's selectivity equals a count of its top-9 images' labels, and units(orderBy: SELECTIVITY) orders by it", async () => {
    const res = await gql(
      server.url,
      `{ model(name: "${MODEL}") { layer(name: "/relu5/Relu") {
          filters(first: 64) { nodes { index selectivity(dataset: "${DATASET}") { images labelled label count share entropy labels { label count } }
                                       topActivations(dataset: "${DATASET}") { nodes { image { label } } } } }
          units(orderBy: SELECTIVITY, dataset: "${DATASET}", first: 64) { totalCount nodes { index selectivity(dataset: "${DATASET}") { share entropy } } } } } }`,
    );
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const { filters, units } = res.data.model.layer;
    assert.equal(filters.nodes.length, 64);
    const shares = new Set<number>();
    for (const f of filters.nodes) {
      const labels = f.topActivations.nodes.map((t: any) => t.image.label);
      const expected = count(labels);
      const s = f.selectivity;
      assert.equal(s.images, 9);
      assert.equal(s.labelled, 9);
      assert.equal(s.label, expected.label, `filter ${f.index}`);
      assert.equal(s.count, expected.count);
      assert.ok(Math.abs(s.share - expected.share) < 1e-12);
      assert.ok(Math.abs(s.entropy - expected.entropy) < 1e-9, `filter ${f.index}: ${s.entropy} vs ${expected.entropy}`);
      assert.equal(
        s.labels.reduce((n: number, l: any) => n + l.count, 0),
        9,
      );
      shares.add(s.share);
    }
    assert.ok(shares.size > 1, 'the units differ in selectivity');
    assert.equal(units.totalCount, 64);
    assert.deepEqual(
      [...units.nodes.map((u: any) => u.index)].sort((a: number, b: number) => a - b),
      filters.nodes.map((f: any) => f.index),
      'every unit once',
    );
    for (let i = 1; i < units.nodes.length; i++) {
      const [a, b] = [units.nodes[i - 1], units.nodes[i]];
      const ordered =
        a.selectivity.share > b.selectivity.share ||
        (a.selectivity.share === b.selectivity.share &&
          (a.selectivity.entropy < b.selectivity.entropy || (a.selectivity.entropy === b.selectivity.entropy && a.index < b.index)));
      assert.ok(ordered, `unit ${a.index} before ${b.index}`);
    }
  });

  test('INDEX_NOT_BUILT for a layer outside the index; BAD_USER_INPUT for SELECTIVITY without a dataset', async () => {
    const one = await gql(
      server.url,
      `{ model(name: "${MODEL}") { layer(name: "/pool5/MaxPool") { filter(index: 0) { selectivity(dataset: "${DATASET}") { share } } } } }`,
    );
    assert.equal(errorCode(one), 'INDEX_NOT_BUILT');
    const all = await gql(
      server.url,
      `{ model(name: "${MODEL}") { layer(name: "/pool5/MaxPool") { units(orderBy: SELECTIVITY, dataset: "${DATASET}") { totalCount } } } }`,
    );
    assert.equal(errorCode(all), 'INDEX_NOT_BUILT');
    const none = await gql(server.url, `{ model(name: "${MODEL}") { layer(name: "/relu5/Relu") { units(orderBy: SELECTIVITY) { totalCount } } } }`);
    assert.equal(errorCode(none), 'BAD_USER_INPUT');
    const byIndex = await gql(server.url, `{ model(name: "${MODEL}") { layer(name: "/pool5/MaxPool") { units(first: 3) { totalCount nodes { index } } } } }`);
    assert.deepEqual(byIndex.data.model.layer.units, { totalCount: 64, nodes: [{ index: 0 }, { index: 1 }, { index: 2 }] });
  });
});

describe('topUnits', () => {
  test("equals a ranking of the layer's activations computed here, each with its projection", async () => {
    const { services } = server;
    const model = services.registry.models.get(MODEL)!;
    const layer = model.layerByName.get('/relu2/Relu')!;
    const bytes = fs.readFileSync(path.join(ROOT, 'datasets', DATASET, 'test-00000.png'));
    const [values] = await services.engine.forward(model, 'test-top-units', () => compileForward(model.graph, [layer.tensor]), {
      key: 'test-top-units',
      data: await preprocess(bytes, model.preprocessing, services.config),
    });
    const [C, H, W] = layer.outputShape;
    const ranked = Array.from({ length: C }, (_, c) => {
      let best = 0;
      for (let i = 1; i < H * W; i++) if (values[c * H * W + i] > values[c * H * W + best]) best = i;
      return { index: c, value: values[c * H * W + best], y: Math.floor(best / W), x: best % W };
    }).sort((a, b) => b.value - a.value || a.index - b.index);

    const res = await gql(
      server.url,
      `{ model(name: "${MODEL}") { topUnits(image: { id: "${IMAGE}" }, layer: "/relu2/Relu", first: 8) { filter { index } value position { y x } image { name } projection { seedValue position { y x } imageUrl } } } }`,
    );
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const got = res.data.model.topUnits;
    assert.equal(got.length, 8);
    got.forEach((u: any, i: number) => {
      const want = ranked[i];
      assert.equal(u.filter.index, want.index, `rank ${i}`);
      assert.ok(Math.abs(u.value - want.value) <= 1e-5 * Math.max(1, Math.abs(want.value)), `rank ${i}: ${u.value} vs ${want.value}`);
      assert.deepEqual(u.position, { y: want.y, x: want.x });
      assert.equal(u.image.name, 'test-00000.png');
      assert.ok(Math.abs(u.projection.seedValue - u.value) <= 1e-5 * Math.max(1, u.value), 'the projection sends down this activation');
      assert.deepEqual(u.projection.position, u.position);
    });
    const png = await fetch(server.url + got[0].projection.imageUrl);
    assert.equal(png.status, 200);

    const all = await gql(
      server.url,
      `{ model(name: "${MODEL}") { topUnits(image: { id: "${IMAGE}" }, layer: "/fc7/Gemm", first: 100) { filter { index } } } }`,
    );
    assert.equal(all.data.model.topUnits.length, 10, 'more than the units gives them all');
    const bad = await gql(server.url, `{ model(name: "${MODEL}") { topUnits(image: { id: "${IMAGE}" }, layer: "/relu2/Relu", first: 0) { value } } }`);
    assert.equal(errorCode(bad), 'BAD_USER_INPUT');
    const noLayer = await gql(server.url, `{ model(name: "${MODEL}") { topUnits(image: { id: "${IMAGE}" }, layer: "/nope", first: 3) { value } } }`);
    assert.equal(errorCode(noLayer), 'NOT_FOUND');
  });
});

const COMPARE = `query($other: String!, $layer: String!, $images: Int) { model(name: "${MODEL}") { compare(other: $other, layer: $layer, dataset: "${DATASET}", images: $images) {
  images k meanCorrelation other { name } units(first: 100) { totalCount nodes { filter { index } match { index } correlation topOverlap top { image { name } value } matchTop { image { name } } } } } } }`;

/** Per unit, its spatially averaged activation on each of the first `n` images, [C][n], computed here. */
async function unitMeans(modelName: string, layerName: string, n: number): Promise<number[][]> {
  const { services } = server;
  const model = services.registry.models.get(modelName)!;
  const layer = model.layerByName.get(layerName)!;
  const dataset = services.datasets.datasets.get(DATASET)!;
  const [C, H, W] = layer.outputShape;
  const means = Array.from({ length: C }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    const bytes = fs.readFileSync(path.join(dataset.dir, dataset.images[i].name));
    const [values] = await services.engine.forward(model, `test-means/${layerName}`, () => compileForward(model.graph, [layer.tensor]), {
      key: `${modelName}/${i}`,
      data: await preprocess(bytes, model.preprocessing, services.config),
    });
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let j = 0; j < H * W; j++) s += values[c * H * W + j];
      means[c][i] = s / (H * W);
    }
  }
  return means;
}

function pearson(a: number[], b: number[]): number {
  const ma = a.reduce((s, v) => s + v, 0) / a.length;
  const mb = b.reduce((s, v) => s + v, 0) / b.length;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

describe('compare', () => {
  test('a model with itself: every unit matches itself with correlation 1 and top-9 overlap 9', async () => {
    const res = await gql(server.url, COMPARE, { other: MODEL, layer: '/relu5/Relu', images: 300 });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const c = res.data.model.compare;
    assert.equal(c.images, 300);
    assert.equal(c.k, 9);
    assert.equal(c.units.totalCount, 64);
    const matched = c.units.nodes.filter((u: any) => u.correlation !== null);
    assert.ok(matched.length >= 48, `${matched.length} of 64 units vary over the images`);
    for (const u of c.units.nodes) {
      if (u.correlation === null) {
        assert.equal(u.match, null);
        assert.ok(
          u.top.every((t: any) => t.value === u.top[0].value),
          `unit ${u.filter.index} has no match only if constant`,
        );
        continue;
      }
      assert.equal(u.match.index, u.filter.index);
      assert.ok(Math.abs(u.correlation - 1) <= 1e-6, `unit ${u.filter.index}: r = ${u.correlation}`);
      assert.equal(u.topOverlap, 9);
      assert.deepEqual(
        u.matchTop,
        u.top.map((t: any) => ({ image: t.image })),
      );
    }
    assert.ok(Math.abs(c.meanCorrelation - 1) <= 1e-6);
  });

  test("between two snapshots: each unit's match is the other's unit of largest Pearson r, computed here", async () => {
    const [n, layer, early] = [200, '/relu5/Relu', `${MODEL}@epoch-01`];
    const res = await gql(server.url, COMPARE, { other: early, layer, images: n });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const c = res.data.model.compare;
    assert.equal(c.other.name, early);
    const [mine, theirs] = [await unitMeans(MODEL, layer, n), await unitMeans(early, layer, n)];
    const varies = (v: number[]) => v.some((x) => x !== v[0]);
    let checked = 0;
    for (const u of c.units.nodes) {
      const c0 = u.filter.index;
      if (!varies(mine[c0])) {
        assert.equal(u.correlation, null);
        continue;
      }
      const rs = theirs.map((t) => (varies(t) ? pearson(mine[c0], t) : -Infinity));
      const best = rs.indexOf(Math.max(...rs));
      assert.ok(u.correlation >= -1 - 1e-9 && u.correlation <= 1 + 1e-9);
      assert.ok(Math.abs(u.correlation - rs[best]) <= 1e-4, `unit ${c0}: r ${u.correlation} vs ${rs[best]}`);
      // The same unit, or one whose r is as good within float error.
      assert.ok(u.match.index === best || Math.abs(rs[u.match.index] - rs[best]) <= 1e-4, `unit ${c0}: match ${u.match.index} vs ${best}`);
      assert.ok(u.topOverlap >= 0 && u.topOverlap <= 9);
      checked++;
    }
    assert.ok(checked >= 48, `${checked} units checked`);
    // Training moved the units, but one epoch in, the features are already related to the final ones.
    assert.ok(c.meanCorrelation > 0.5 && c.meanCorrelation < 1 - 1e-6, `mean r ${c.meanCorrelation}`);
    const later = await gql(server.url, COMPARE, { other: `${MODEL}@epoch-05`, layer, images: n });
    assert.ok(
      later.data.model.compare.meanCorrelation > c.meanCorrelation,
      `epoch 5 (${later.data.model.compare.meanCorrelation}) is closer to the final model than epoch 1 (${c.meanCorrelation})`,
    );
  }, 120_000);

  test('bad arguments give stable error codes, and the server keeps serving', async () => {
    const code = async (vars: Record<string, unknown>) => errorCode(await gql(server.url, COMPARE, vars));
    assert.equal(await code({ other: 'lrn_decomposed', layer: '/conv1/Conv' }), 'INCOMPATIBLE_MODELS');
    assert.equal(await code({ other: 'no-such-model', layer: '/relu5/Relu' }), 'NOT_FOUND');
    assert.equal(await code({ other: 'lrn_decomposed', layer: '/relu5/Relu' }), 'NOT_FOUND');
    assert.equal(await code({ other: MODEL, layer: '/relu5/Relu', images: 1 }), 'BAD_USER_INPUT');
    assert.equal(await code({ other: MODEL, layer: '/relu5/Relu', images: 501 }), 'BAD_USER_INPUT'); // MAX_COMPARE_IMAGES
    const units = await gql(server.url, COMPARE, { other: MODEL, layer: '/relu3/Relu', images: 10 }); // 96 units > MAX_COMPARE_UNITS
    assert.equal(errorCode(units), 'BAD_USER_INPUT');
    assert.match(units.errors![0].message, /MAX_COMPARE_UNITS/);
    const ok = await gql(server.url, COMPARE, { other: MODEL, layer: '/conv1/Conv', images: 20 });
    assert.equal(ok.errors, undefined, JSON.stringify(ok.errors));
  });
});

const INVARIANCE = `query($image: ImageInput!, $transform: InvarianceTransform!, $steps: Int, $to: Float, $layers: [String!], $targetClass: Int) {
  model(name: "${MODEL}") { invariance(image: $image, transform: $transform, steps: $steps, to: $to, layers: $layers, targetClass: $targetClass) {
    transform layers targetClass targetLabel targetSource steps { amount distances relativeDistances probability } imageUrl } } }`;

describe('invariance', () => {
  test('step 0 is the original: distance 0 and the probability predict gives; a full turn comes back', async () => {
    const predicted = (await gql(server.url, `{ model(name: "${MODEL}") { labels predict(image: { id: "${IMAGE}" }, top: 10) { classIndex probability } } }`))
      .data.model;
    const boot = predicted.labels.indexOf('Ankle boot');
    const res = await gql(server.url, INVARIANCE, { image: { id: IMAGE }, transform: 'ROTATE', steps: 5 });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const inv = res.data.model.invariance;
    assert.deepEqual(inv.layers, ['/relu1/Relu', '/relu6/Relu'], 'the first and the last ReLU');
    assert.equal(inv.targetSource, 'LABEL');
    assert.equal(inv.targetClass, boot);
    assert.equal(inv.targetLabel, 'Ankle boot');
    assert.deepEqual(
      inv.steps.map((s: any) => s.amount),
      [0, 90, 180, 270, 360],
    );
    const [first, , half, , last] = inv.steps;
    assert.deepEqual(first.distances, [0, 0]);
    const p = predicted.predict.find((x: any) => x.classIndex === boot).probability;
    assert.ok(Math.abs(first.probability - p) <= 1e-6, `${first.probability} vs predict's ${p}`);
    assert.ok(half.distances.every((d: number) => d > 0) && half.probability < first.probability, 'upside down, the features and the class change');
    assert.ok(
      last.relativeDistances.every((d: number) => d < 1e-3),
      `a full turn is the original again: ${last.relativeDistances}`,
    );

    const png = await fetch(server.url + inv.imageUrl);
    assert.equal(png.status, 200);
    const meta = await sharp(Buffer.from(await png.arrayBuffer())).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 900, 'three panels: two layers and the probability');
    const again = await gql(server.url, INVARIANCE, { image: { id: IMAGE }, transform: 'ROTATE', steps: 5 });
    assert.equal(again.data.model.invariance.imageUrl, inv.imageUrl, 'content-addressed');
  });

  test('translation and scaling: amounts from the identity, distances growing; an upload follows its top-1 class', async () => {
    const shift = (await gql(server.url, INVARIANCE, { image: { id: IMAGE }, transform: 'TRANSLATE', steps: 4, layers: ['/relu2/Relu'], targetClass: 3 })).data
      .model.invariance;
    assert.deepEqual(
      shift.steps.map((s: any) => s.amount),
      [0, 7 / 3, 14 / 3, 7],
    );
    assert.equal(shift.targetSource, 'ARGUMENT');
    assert.equal(shift.targetClass, 3);
    assert.equal(shift.steps[0].distances[0], 0);
    assert.ok(shift.steps[3].distances[0] > shift.steps[1].distances[0], 'further moved, further apart');
    const scale = (await gql(server.url, INVARIANCE, { image: { id: IMAGE }, transform: 'SCALE', steps: 3, to: 0.5 })).data.model.invariance;
    assert.deepEqual(
      scale.steps.map((s: any) => s.amount),
      [1, 0.75, 0.5],
    );

    const base64 = fs.readFileSync(path.join(ROOT, 'datasets', DATASET, 'test-00001.png')).toString('base64');
    const top1 = (
      await gql(server.url, `query($b: String!) { model(name: "${MODEL}") { predict(image: { base64: $b }, top: 1) { classIndex probability } } }`, {
        b: base64,
      })
    ).data.model.predict[0];
    const up = (await gql(server.url, INVARIANCE, { image: { base64 }, transform: 'TRANSLATE', steps: 2 })).data.model.invariance;
    assert.equal(up.targetSource, 'TOP1');
    assert.equal(up.targetClass, top1.classIndex);
    assert.ok(Math.abs(up.steps[0].probability - top1.probability) <= 1e-6);
  });

  test('bad arguments give stable error codes', async () => {
    const code = async (vars: Record<string, unknown>) => errorCode(await gql(server.url, INVARIANCE, { image: { id: IMAGE }, transform: 'SCALE', ...vars }));
    assert.equal(await code({ steps: 1 }), 'BAD_USER_INPUT');
    assert.equal(await code({ steps: 33 }), 'BAD_USER_INPUT'); // MAX_INVARIANCE_STEPS
    assert.equal(await code({ to: 0 }), 'BAD_USER_INPUT');
    assert.equal(await code({ transform: 'TRANSLATE', to: 29 }), 'BAD_USER_INPUT');
    assert.equal(await code({ targetClass: 10 }), 'BAD_USER_INPUT');
    assert.equal(await code({ layers: [] }), 'BAD_USER_INPUT');
    assert.equal(await code({ layers: ['/relu1/Relu', '/relu2/Relu', '/relu3/Relu', '/relu4/Relu', '/relu5/Relu'] }), 'BAD_USER_INPUT');
    assert.equal(await code({ layers: ['/nope'] }), 'NOT_FOUND');
    assert.equal(await code({ transform: 'SHEAR' }), 'BAD_USER_INPUT'); // Apollo's code for a variable outside the enum
  });
});
