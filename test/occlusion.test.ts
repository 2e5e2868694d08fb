/**
 * Occlusion sensitivity (ZF §4.2, Fig. 7) and predictions: the engine against the PyTorch
 * reference (scripts/make_occlusion_reference.py; tolerance 1e-4 relative), predictions against
 * the saved logits, a big grid that must run in batch-sized chunks, and the GraphQL fields.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { decodeNpy } from '../src/cache/npy';
import { compileForward } from '../src/compiler/forward';
import { loadConfig } from '../src/config';
import { defaultOcclusionLayer, occlude, OcclusionResult } from '../src/engine/occlusion';
import { preprocess } from '../src/images/preprocess';
import { createServices, Services } from '../src/service/services';
import { errorCode, FIXTURE_MODELS, gql, startTestServer } from './helpers';
import { loadManifest, loadNpy, REFERENCE, relativeError } from './reference';

const TOLERANCE = 1e-4;
const manifest = loadManifest();

interface OcclusionCase {
  id: string;
  model: string;
  layer: string;
  size: number;
  stride: number;
  fill: 'MEAN' | 'ZERO' | 'VALUE';
  fillValue: number | null;
  fillValues: number[];
  targetClassArg: number | null;
  targetClass: number;
  grid: [number, number];
  strongestChannel: number;
  strongestMax: number;
  unoccludedTotal: number;
  minTop2Margin: number;
  expected: string;
}
const cases: OcclusionCase[] = JSON.parse(fs.readFileSync(path.join(REFERENCE, 'occlusion', 'manifest.json'), 'utf8')).cases;

function softmax(logits: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(logits));
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

describe('occlusion and predictions match PyTorch', () => {
  let s: Services;
  beforeAll(async () => {
    s = await createServices(loadConfig({ MODELS_DIR: FIXTURE_MODELS, CACHE_DIR: '/tmp/convscope-test-occlusion', LOG_LEVEL: 'silent' }));
  });
  afterAll(() => s.engine.close());

  const model = (name: string) => s.registry.models.get(name)!;

  async function run(c: OcclusionCase, batch: number): Promise<OcclusionResult> {
    const m = model(c.model);
    const layer = m.layerByName.get(c.layer)!;
    return occlude(s.engine, m, {
      layerTensor: layer.tensor,
      layerShape: layer.outputShape,
      image: { key: `ref-${c.model}`, data: loadNpy(manifest.models[c.model].input).data },
      size: c.size,
      stride: c.stride,
      fill: c.fillValues,
      targetClass: c.targetClassArg ?? undefined,
      batch,
    });
  }

  test('the reference covers every fill, a default and a given target, and grids that do not tile the image', () => {
    assert.deepEqual([...new Set(cases.map((c) => c.fill))].sort(), ['MEAN', 'VALUE', 'ZERO']);
    assert.ok(cases.some((c) => c.targetClassArg !== null) && cases.some((c) => c.targetClassArg === null));
    assert.ok(cases.some((c) => (manifest.models[c.model].inputShape[1] - c.size) % c.stride !== 0));
  });

  test('the default layer is the rectified last conv with spatial output', () => {
    const name = (m: string) => defaultOcclusionLayer(model(m).graph, model(m).layers)?.name;
    assert.equal(name('zfnet'), '/relu5/Relu');
    assert.equal(name('misc'), '/relu3/Relu');
    assert.equal(name('alexnet'), '/features/features.11/Relu');
    // ResNet: through BatchNormalization, the residual Add and the block's ReLU
    assert.match(name('resnet')!, /^\/layer4\/layer4\.1\/relu/);
  });

  for (const c of cases) {
    for (const batch of [16, 5]) {
      test(`${c.id} (batches of ${batch})`, async () => {
        const r = await run(c, batch);
        const expected = loadNpy(c.expected);
        const [gh, gw] = c.grid;
        assert.deepEqual(expected.shape, [3, gh, gw]);
        assert.deepEqual([r.height, r.width], [gh, gw]);
        assert.equal(r.channel, c.strongestChannel, 'strongest feature map');
        assert.ok(Math.abs(r.channelMax - c.strongestMax) <= TOLERANCE * Math.abs(c.strongestMax));
        assert.ok(Math.abs(r.baselineTotal - c.unoccludedTotal) <= TOLERANCE * Math.abs(c.unoccludedTotal));
        assert.equal(r.targetClass, c.targetClass);
        const n = gh * gw;
        const grid = (k: number) => expected.data.subarray(k * n, (k + 1) * n);
        const eb = relativeError(r.activation, grid(0));
        const ed = relativeError(r.probability, grid(1));
        assert.ok(eb <= TOLERANCE, `(b) total activation: relative error ${eb.toExponential(2)}`);
        assert.ok(ed <= TOLERANCE, `(d) class probability: relative error ${ed.toExponential(2)}`);
        assert.ok(c.minTop2Margin > 1e-4, 'the reference has no near-ties for the top class');
        assert.deepEqual(Array.from(r.topClass), Array.from(grid(2)), '(e) most probable class');
      });
    }
  }

  test('predict: softmax of the saved logits; a model ending in Softmax gives its output', async () => {
    for (const name of ['alexnet', 'zfnet', 'vgg', 'resnet', 'squeezenet', 'lrn_decomposed', 'misc']) {
      const ref = manifest.models[name];
      const probabilities = await s.inference.probabilities(model(name), { key: `ref-${name}`, data: loadNpy(ref.input).data });
      const logits = loadNpy(ref.logits).data;
      const expected = name === 'misc' ? Array.from(logits) : softmax(logits);
      assert.equal(probabilities.length, 10);
      const e = relativeError(probabilities, expected);
      assert.ok(e <= TOLERANCE, `${name}: relative error ${e.toExponential(2)}`);
      if (name === 'misc') assert.ok(Math.abs(expected.reduce((a, b) => a + b, 0) - 1) < 1e-5, 'misc logits are probabilities');
    }
  });
});

describe('a big grid runs in batch-sized chunks', () => {
  let s: Services;
  beforeAll(async () => {
    s = await createServices(loadConfig({ MODELS_DIR: FIXTURE_MODELS, CACHE_DIR: '/tmp/convscope-test-occlusion', LOG_LEVEL: 'silent', MAX_BATCH: '16' }));
  });
  afterAll(() => s.engine.close());

  test('stride 1 on misc (34×34 = 1156 positions): every run ≤ 16 items, at most two batches submitted at once', async () => {
    const m = s.registry.models.get('misc')!;
    const layer = m.layerByName.get('/relu3/Relu')!;
    const image = { key: 'big-grid', data: loadNpy(manifest.models.misc.input).data };
    const engine = s.engine;
    const sizes: number[] = [];
    let maxQueued = 0;
    const originalRun = engine.run.bind(engine);
    engine.run = async (loaded, feeds, items) => {
      sizes.push(items);
      for (const b of (engine as unknown as { batchers: Map<string, { queued: number }> }).batchers.values()) maxQueued = Math.max(maxQueued, b.queued);
      return originalRun(loaded, feeds, items);
    };
    const before = { ...engine.stats };
    let r: OcclusionResult;
    try {
      r = await occlude(engine, m, { layerTensor: layer.tensor, layerShape: layer.outputShape, image, size: 4, stride: 1, fill: [0, 0, 0], batch: 16 });
    } finally {
      engine.run = originalRun;
    }
    assert.deepEqual([r.height, r.width], [34, 34]);
    const items = engine.stats.items - before.items;
    const runs = engine.stats.runs - before.runs;
    assert.equal(items, 1156 + 1, 'every position once, and the unoccluded image');
    assert.ok(runs >= Math.ceil(1156 / 16) + 1, `${runs} runs`);
    assert.ok(Math.max(...sizes) <= 16, `largest run ${Math.max(...sizes)}`);
    assert.ok(maxQueued <= 16, `at most one batch waits while one runs (saw ${maxQueued} queued)`);

    // Spot check against the plain forward graph on images occluded here, position by position.
    const output = m.graph.outputNames[0];
    for (const p of [0, 1, 33, 34, 600, 1155]) {
      const y0 = Math.floor(p / 34);
      const x0 = p % 34;
      const data = Float32Array.from(image.data);
      for (let c = 0; c < 3; c++) for (let y = y0; y < y0 + 4; y++) data.fill(0, (c * 37 + y) * 37 + x0, (c * 37 + y) * 37 + x0 + 4);
      const [act, probs] = await engine.forward(m, `forward/${layer.tensor}|${output}`, () => compileForward(m.graph, [layer.tensor, output]), {
        key: `occluded-${p}`,
        data,
      });
      const total = act.subarray(r.channel * 81, (r.channel + 1) * 81).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - r.activation[p]) <= 1e-4 * Math.abs(total), `position ${p}: ${r.activation[p]} vs ${total}`);
      assert.ok(Math.abs(probs[r.targetClass] - r.probability[p]) <= 1e-5, `position ${p}: probability`);
    }
  });
});

/** A deterministic RGB picture, as PNG bytes. */
async function picture(width: number, height: number, seed = 1): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++)
        raw[(y * width + x) * 3 + c] = Math.round(127.5 + 120 * Math.sin((x * (c + 1) + seed * 13) / 9) * Math.cos((y + c * 7 + seed) / 11));
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

const OCCLUSION = `query($model: String!, $image: ImageInput!, $size: Int, $stride: Int, $fill: OcclusionFill, $fillValue: Float, $layer: String, $targetClass: Int) {
  model(name: $model) { occlusion(image: $image, size: $size, stride: $stride, fill: $fill, fillValue: $fillValue, layer: $layer, targetClass: $targetClass) {
    width height size stride fill fillValues targetClass targetLabel unoccludedActivation unoccludedProbability
    strongestMap { layer channel maxActivation filter { index } }
    strongestMapActivation { imageUrl tensorUrl min max }
    classProbability { imageUrl tensorUrl min max }
    topClass { imageUrl tensorUrl min max }
    topClassLegend { classIndex label color positions }
    projection { seedValue position { y x } imageUrl }
  } } }`;

describe('occlusion and predict over GraphQL', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let png: Buffer;
  beforeAll(async () => {
    server = await startTestServer({ MAX_OCCLUSION_POSITIONS: '4096' });
    png = await picture(112, 112);
  });
  afterAll(() => server.close());

  const fetchNpy = async (url: string) => decodeNpy(Buffer.from(await (await fetch(server.url + url)).arrayBuffer()));

  test('predict: top classes with sidecar labels, most probable first, equal to the engine', async () => {
    const image = { base64: png.toString('base64') };
    const r = await gql(
      server.url,
      `query($image: ImageInput!) { model(name: "zfnet") { top3: predict(image: $image, top: 3) { classIndex label probability } all: predict(image: $image, top: 50) { probability } } }`,
      { image },
    );
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const { top3, all } = r.data.model;
    assert.equal(top3.length, 3);
    assert.equal(all.length, 10, 'top above the class count gives every class');
    assert.ok(Math.abs(all.reduce((a: number, p: { probability: number }) => a + p.probability, 0) - 1) < 1e-5);
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].probability >= all[i].probability);
    assert.equal(top3[0].label, `class${top3[0].classIndex}`);
    const m = server.services.registry.models.get('zfnet')!;
    const direct = await server.services.inference.probabilities(m, { key: 'direct', data: await preprocess(png, m.preprocessing, server.services.config) });
    assert.ok(Math.abs(direct[top3[0].classIndex] - top3[0].probability) < 1e-6);
    const bad = await gql(server.url, `query($image: ImageInput!) { model(name: "zfnet") { predict(image: $image, top: 0) { classIndex } } }`, { image });
    assert.equal(errorCode(bad), 'BAD_USER_INPUT');
  });

  test('occlusion: maps, their PNG and .npy, the strongest map and its projection; computed once', async () => {
    const image = { base64: png.toString('base64') };
    const vars = { model: 'zfnet', image, size: 32, stride: 16 };
    const runs = server.services.engine.stats.runs;
    const r = await gql(server.url, OCCLUSION, vars);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const o = r.data.model.occlusion;
    assert.deepEqual([o.width, o.height, o.size, o.stride, o.fill, o.fillValues], [6, 6, 32, 16, 'MEAN', [0, 0, 0]]);
    assert.equal(o.strongestMap.layer, '/relu5/Relu');
    assert.equal(o.strongestMap.filter.index, o.strongestMap.channel);
    assert.equal(o.targetLabel, `class${o.targetClass}`);
    assert.equal(o.projection.seedValue, o.strongestMap.maxActivation, 'the projection seeds the strongest map at its max');
    assert.equal(
      o.topClassLegend.reduce((a: number, c: { positions: number }) => a + c.positions, 0),
      36,
    );
    const predicted = await gql(
      server.url,
      `query($image: ImageInput!) { model(name: "zfnet") { predict(image: $image, top: 1) { classIndex probability } } }`,
      { image },
    );
    assert.equal(predicted.data.model.predict[0].classIndex, o.targetClass, 'the default target is the top prediction');
    assert.ok(Math.abs(predicted.data.model.predict[0].probability - o.unoccludedProbability) < 1e-5);
    for (const map of [o.strongestMapActivation, o.classProbability, o.topClass]) {
      const npy = await fetchNpy(map.tensorUrl);
      assert.deepEqual(npy.shape, [6, 6]);
      assert.equal(Math.min(...npy.data), map.min);
      assert.equal(Math.max(...npy.data), map.max);
      const res = await fetch(server.url + map.imageUrl);
      assert.equal(res.headers.get('content-type'), 'image/png');
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      assert.deepEqual([meta.width, meta.height, meta.channels], [224, 224, 3]);
    }
    const classes = await fetchNpy(o.topClass.tensorUrl);
    assert.ok(o.topClassLegend.every((c: { classIndex: number; positions: number }) => classes.data.filter((k) => k === c.classIndex).length === c.positions));
    const afterFirst = server.services.engine.stats.runs;
    assert.ok(afterFirst > runs);
    const again = await gql(server.url, OCCLUSION, vars);
    assert.deepEqual(again.data, r.data, 'the same URLs');
    assert.equal(server.services.engine.stats.runs, afterFirst, 'a repeat runs nothing');
    const third = await gql(server.url, OCCLUSION, { ...vars, targetClass: o.targetClass });
    assert.equal(
      third.data.model.occlusion.classProbability.tensorUrl,
      o.classProbability.tensorUrl,
      'an explicit target equal to the default names the same blob',
    );
  });

  test('fills: ZERO is a black pixel, VALUE a given preprocessed value; a given layer and target', async () => {
    const image = { base64: png.toString('base64') };
    const zero = await gql(server.url, OCCLUSION, { model: 'zfnet', image, size: 32, stride: 16, fill: 'ZERO' });
    assert.equal(zero.errors, undefined, JSON.stringify(zero.errors));
    assert.deepEqual(zero.data.model.occlusion.fillValues, [-103.939, -116.779, -123.68]);
    const value = await gql(server.url, OCCLUSION, {
      model: 'misc',
      image,
      size: 8,
      stride: 4,
      fill: 'VALUE',
      fillValue: 1.5,
      layer: '/relu2/Relu',
      targetClass: 3,
    });
    assert.equal(value.errors, undefined, JSON.stringify(value.errors));
    const o = value.data.model.occlusion;
    assert.deepEqual([o.width, o.height, o.fillValues, o.targetClass, o.strongestMap.layer], [8, 8, [1.5, 1.5, 1.5], 3, '/relu2/Relu']);
    assert.ok(o.classProbability.min >= 0 && o.classProbability.max <= 1);
  });

  test('bad arguments: BAD_USER_INPUT or NOT_FOUND, before any work', async () => {
    const image = { base64: png.toString('base64') };
    const runs = server.services.engine.stats.runs;
    const expect = async (vars: Record<string, unknown>, code: string, pattern: RegExp) => {
      const r = await gql(server.url, OCCLUSION, { model: 'zfnet', image, ...vars });
      assert.equal(errorCode(r), code, JSON.stringify(vars) + ' ' + JSON.stringify(r.errors));
      assert.match(r.errors![0].message, pattern);
    };
    await expect({ size: 0, stride: 4 }, 'BAD_USER_INPUT', /size 0 is out of range: give 1 to 112/);
    await expect({ size: 113, stride: 4 }, 'BAD_USER_INPUT', /size 113/);
    await expect({ size: 8, stride: 0 }, 'BAD_USER_INPUT', /stride 0/);
    await expect({ size: 8, stride: 200 }, 'BAD_USER_INPUT', /stride 200/);
    await expect({ size: 8, stride: 8, layer: '/nope' }, 'NOT_FOUND', /no layer "\/nope"/);
    await expect({ size: 8, stride: 8, fill: 'VALUE' }, 'BAD_USER_INPUT', /fillValue/);
    await expect({ size: 8, stride: 8, fillValue: 2 }, 'BAD_USER_INPUT', /fillValue/);
    await expect({ size: 8, stride: 8, targetClass: 10 }, 'BAD_USER_INPUT', /targetClass 10 .* 0 to 9/);
    const alex = await gql(server.url, OCCLUSION, { model: 'alexnet', image, size: 1, stride: 1 });
    assert.equal(errorCode(alex), 'BAD_USER_INPUT');
    assert.match(alex.errors![0].message, /224×224 = 50176 occluder positions, over the limit of 4096 \(MAX_OCCLUSION_POSITIONS\)/);
    assert.equal(server.services.engine.stats.runs, runs, 'nothing ran');
  });

  test('a model without a projection rule still gets its maps; the projection is null with UNSUPPORTED_MODEL', async () => {
    const image = { base64: (await picture(16, 16)).toString('base64') };
    const r = await gql(server.url, OCCLUSION, { model: 'unsupported', image, size: 4, stride: 4 });
    assert.equal(r.data.model.occlusion.width, 4);
    assert.equal(r.data.model.occlusion.projection, null);
    assert.equal(errorCode(r), 'UNSUPPORTED_MODEL');
    assert.deepEqual(r.errors![0].extensions?.code, 'UNSUPPORTED_MODEL');
  });
});
