/**
 * Inference through the GraphQL API: projections, activations and feature maps of real images,
 * uploads, request-level deduplication and batching, and the errors of bad requests.
 */
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { decodeNpy } from '../src/cache/npy';
import { project } from '../src/engine/projections';
import { preprocess } from '../src/images/preprocess';
import { assertPixelGraphsMatch, errorCode, gql, startTestServer } from './helpers';
import { relativeError } from './reference';

type Server = Awaited<ReturnType<typeof startTestServer>>;

/** A deterministic RGB picture (smooth pattern plus texture), as PNG bytes. */
async function picture(width: number, height: number, seed = 1, channels: 1 | 3 = 3): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        raw[(y * width + x) * channels + c] = Math.round(127.5 + 120 * Math.sin((x * (c + 1) + seed * 13) / 9) * Math.cos((y + c * 7 + seed) / 11));
      }
    }
  }
  return sharp(raw, { raw: { width, height, channels } }).png().toBuffer();
}

const PROJECTION = `query($model: String!, $layer: String!, $index: Int!, $image: ImageInput!, $method: ProjectionMethod, $seed: SeedMode, $position: PositionInput) {
  model(name: $model) { layer(name: $layer) { filter(index: $index) {
    projection(image: $image, method: $method, seed: $seed, position: $position) { seedValue position { y x } box { x y width height } imageUrl tensorUrl }
  } } } }`;

describe('inference over GraphQL', () => {
  let server: Server;
  let png224: Buffer;
  beforeAll(async () => {
    server = await startTestServer();
    png224 = await picture(224, 224);
  });
  afterAll(() => server.close());

  test('preprocessing: an image at the input size is used pixel for pixel, then ((p·scale) − mean) / std', async () => {
    const model = server.services.registry.models.get('alexnet')!;
    const p = model.preprocessing;
    const raw = await sharp(png224).raw().toBuffer();
    const tensor = await preprocess(png224, p, server.services.config);
    for (const [c, y, x] of [
      [0, 0, 0],
      [1, 17, 200],
      [2, 223, 223],
      [0, 100, 3],
    ]) {
      const expected = (raw[(y * 224 + x) * 3 + c] * p.scale - p.mean[c]) / p.std[c];
      assert.ok(Math.abs(tensor[(c * 224 + y) * 224 + x] - expected) < 1e-5, `pixel (${c}, ${y}, ${x})`);
    }
  });

  test('preprocessing: BGR models get their channels reversed, grey models one channel, other sizes are resized', async () => {
    const base = server.services.registry.models.get('alexnet')!.preprocessing;
    const bgr = await preprocess(png224, { ...base, channels: 'BGR', mean: [0, 0, 0], std: [1, 1, 1], scale: 1 }, server.services.config);
    const raw = await sharp(png224).raw().toBuffer();
    assert.equal(bgr[0], raw[2], 'first plane is blue');
    assert.equal(bgr[2 * 224 * 224], raw[0], 'last plane is red');
    const grey = await preprocess(
      await picture(64, 48, 2),
      { ...base, channels: 'GRAY', mean: [0], std: [1], scale: 1, height: 28, width: 28 },
      server.services.config,
    );
    assert.equal(grey.length, 28 * 28);
    assert.ok(grey.some((v) => v > 0) && grey.every((v) => v >= 0 && v <= 255));
  });

  test('graphs that take 8-bit pixels (index jobs) normalise them to exactly the floats of preprocess()', async () => {
    await assertPixelGraphsMatch(server.services, 'alexnet', (channels) => picture(70, 50, 3, channels));
  });

  test('a projection over GraphQL equals the engine on the same input; its .npy and PNG decode', async () => {
    const layer = '/features/features.11/Relu';
    const res = await gql(server.url, PROJECTION, { model: 'alexnet', layer, index: 5, image: { base64: png224.toString('base64') } });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const p = res.data.model.layer.filter.projection;
    const npy = decodeNpy(Buffer.from(await (await fetch(server.url + p.tensorUrl)).arrayBuffer()));
    assert.deepEqual(npy.shape, [3, 224, 224]);
    const model = server.services.registry.models.get('alexnet')!;
    const direct = await project(server.services.engine, model, {
      target: model.layerByName.get(layer)!.tensor,
      method: 'DECONVNET',
      lrn: 'IDENTITY',
      image: { key: 'direct', data: await preprocess(png224, model.preprocessing, server.services.config) },
      channel: 5,
      seed: 'MAX',
    });
    assert.ok(relativeError(npy.data, direct.projection) <= 1e-6);
    assert.equal(p.seedValue, direct.seedValue);
    // conv5's receptive field: 163 px, stride 16, offset −66, clipped to the image.
    const x0 = -66 + 16 * p.position.x;
    const y0 = -66 + 16 * p.position.y;
    assert.deepEqual(p.box, {
      x: Math.max(0, x0),
      y: Math.max(0, y0),
      width: Math.min(224, x0 + 163) - Math.max(0, x0),
      height: Math.min(224, y0 + 163) - Math.max(0, y0),
    });
    const img = await fetch(server.url + p.imageUrl);
    assert.equal(img.headers.get('content-type'), 'image/png');
    const meta = await sharp(Buffer.from(await img.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height], [224, 224]);
  });

  test('a FULL_MAP projection’s input box is the whole map’s receptive field, from its first unit to its last, clipped', async () => {
    const layer = '/features/features.4/Relu';
    const query = PROJECTION.replace('box { x y width height }', 'box: inputBox { x y width height }');
    const res = await gql(server.url, query, { model: 'alexnet', layer, index: 7, image: { base64: png224.toString('base64') }, seed: 'FULL_MAP' });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const p = res.data.model.layer.filter.projection;
    assert.notDeepEqual(p.position, { y: 0, x: 0 }, 'the maximum is not the first unit, so the box does not start at the maximum’s field');
    const { receptiveField: rf, outputShape } = server.services.registry.models.get('alexnet')!.layerByName.get(layer)!;
    const [, H, W] = outputShape;
    const start = (a: number) => Math.max(0, rf.offset[a]);
    const end = (a: number, n: number) => Math.min(224, rf.offset[a] + (n - 1) * rf.stride[a] + rf.size[a]);
    assert.deepEqual(p.box, { x: start(1), y: start(0), width: end(1, W) - start(1), height: end(0, H) - start(0) });
  });

  test('activation and featureMaps agree with each other and with the projection seed', async () => {
    const image = { base64: png224.toString('base64') };
    const res = await gql(
      server.url,
      `query($image: ImageInput!) { model(name: "alexnet") { layer(name: "/features/features.4/Relu") {
        featureMaps(image: $image) { shape channels { index max mean } gridUrl tensorUrl }
        filter(index: 7) { activation(image: $image) { max mean position { y x } mapUrl } projection(image: $image) { seedValue position { y x } } } } } }`,
      { image },
    );
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const layer = res.data.model.layer;
    assert.deepEqual(layer.featureMaps.shape, [32, 27, 27]);
    assert.equal(layer.featureMaps.channels[7].max, layer.filter.activation.max);
    assert.equal(layer.filter.projection.seedValue, layer.filter.activation.max);
    assert.deepEqual(layer.filter.projection.position, layer.filter.activation.position);
    const npy = decodeNpy(Buffer.from(await (await fetch(server.url + layer.featureMaps.tensorUrl)).arrayBuffer()));
    assert.deepEqual(npy.shape, [32, 27, 27]);
    const map7 = npy.data.subarray(7 * 729, 8 * 729);
    assert.equal(Math.max(...map7), layer.filter.activation.max);
  });

  test('within a request the same projection is computed once, and different filters share one run', async () => {
    const image = { base64: (await picture(224, 224, 5)).toString('base64') };
    const runs = server.services.engine.stats.runs;
    const items = server.services.engine.stats.items;
    const res = await gql(
      server.url,
      `query($image: ImageInput!) { model(name: "alexnet") { layer(name: "/features/features.9/Relu") {
        a: filter(index: 1) { projection(image: $image) { seedValue } }
        b: filter(index: 1) { projection(image: $image) { seedValue } }
        c: filter(index: 2) { projection(image: $image) { seedValue } }
        d: filter(index: 3) { projection(image: $image) { seedValue } } } } }`,
      { image },
    );
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    assert.equal(res.data.model.layer.a.projection.seedValue, res.data.model.layer.b.projection.seedValue);
    assert.equal(server.services.engine.stats.runs - runs, 1, 'one ORT run');
    assert.equal(server.services.engine.stats.items - items, 3, 'three distinct projections');
  });

  test('uploadImage returns an ID usable wherever an image is taken', async () => {
    const png = await picture(100, 80, 3);
    const up = await gql(server.url, `mutation($b: String!) { uploadImage(base64: $b) { id sha256 width height format } }`, { b: png.toString('base64') });
    assert.equal(up.errors, undefined, JSON.stringify(up.errors));
    assert.deepEqual([up.data.uploadImage.width, up.data.uploadImage.height, up.data.uploadImage.format], [100, 80, 'png']);
    const byId = await gql(server.url, PROJECTION, { model: 'zfnet', layer: '/conv3/Conv', index: 2, image: { id: up.data.uploadImage.id } });
    const inline = await gql(server.url, PROJECTION, { model: 'zfnet', layer: '/conv3/Conv', index: 2, image: { base64: png.toString('base64') } });
    assert.equal(byId.errors, undefined, JSON.stringify(byId.errors));
    assert.deepEqual(byId.data, inline.data);
  });

  test('a Softmax layer projects the logits before it; dense units project', async () => {
    const image = { base64: (await picture(37, 37, 4)).toString('base64') };
    const softmax = await gql(server.url, PROJECTION, { model: 'misc', layer: '/softmax/Softmax', index: 3, image });
    const logits = await gql(server.url, PROJECTION, { model: 'misc', layer: '/fc/Gemm', index: 3, image });
    assert.equal(softmax.errors, undefined, JSON.stringify(softmax.errors));
    const a = softmax.data.model.layer.filter.projection;
    const b = logits.data.model.layer.filter.projection;
    assert.equal(a.seedValue, b.seedValue);
    const tensor = async (url: string) => Buffer.from(await (await fetch(server.url + url)).arrayBuffer());
    assert.ok((await tensor(a.tensorUrl)).equals(await tensor(b.tensorUrl)), 'the same projection');
    assert.deepEqual(a.box, { x: 0, y: 0, width: 37, height: 37 });
  });

  test('an op the compiler does not know gives UNSUPPORTED_MODEL naming the node, and the server goes on', async () => {
    const layers = await gql(server.url, `{ model(name: "unsupported") { layers(first: 50) { nodes { name op } } } }`);
    const nodes: { name: string; op: string }[] = layers.data.model.layers.nodes;
    const strange = nodes.find((n) => n.op === 'Floor');
    assert.ok(strange, 'the fixture quantises with a Floor node');
    const above = nodes[nodes.length - 1];
    const image = { base64: (await picture(32, 32, 6)).toString('base64') };
    const res = await gql(server.url, PROJECTION, { model: 'unsupported', layer: above.name, index: 0, image });
    assert.equal(errorCode(res), 'UNSUPPORTED_MODEL');
    assert.match(res.errors![0].message, new RegExp(strange.op));
    assert.ok(res.errors![0].message.includes(strange.name), res.errors![0].message);
    assert.equal(res.errors![0].extensions!.node, strange.name);
    const below = await gql(server.url, PROJECTION, { model: 'unsupported', layer: nodes[0].name, index: 0, image });
    assert.equal(below.errors, undefined, 'a layer below the unsupported op still projects');
  });

  describe('bad requests get BAD_USER_INPUT or NOT_FOUND', () => {
    const good = { model: 'zfnet', layer: '/conv1/Conv', index: 0 };
    const cases: [string, Record<string, unknown>, string][] = [
      ['channel out of range', { index: 16 }, 'BAD_USER_INPUT'],
      ['negative channel', { index: -1 }, 'BAD_USER_INPUT'],
      ['POSITION without a position', { seed: 'POSITION' }, 'BAD_USER_INPUT'],
      ['position outside the map', { seed: 'POSITION', position: { y: 54, x: 0 } }, 'BAD_USER_INPUT'],
      ['negative position', { seed: 'POSITION', position: { y: 0, x: -1 } }, 'BAD_USER_INPUT'],
      ['a position with seed MAX', { position: { y: 1, x: 1 } }, 'BAD_USER_INPUT'],
      ['malformed base64', { image: { base64: '***not base64***' } }, 'BAD_USER_INPUT'],
      ['bytes that are not an image', { image: { base64: Buffer.from('hello, this is text').toString('base64') } }, 'BAD_USER_INPUT'],
      ['both id and base64', { image: { id: 'x', base64: 'eA==' } }, 'BAD_USER_INPUT'],
      ['neither id nor base64', { image: {} }, 'BAD_USER_INPUT'],
      ['a malformed image id', { image: { id: '%%%' } }, 'BAD_USER_INPUT'],
      ['an unknown image id', { image: { id: Buffer.from(JSON.stringify(['Image', 'upload', 'f'.repeat(64)])).toString('base64url') } }, 'NOT_FOUND'],
      ['an unknown layer', { layer: '/conv9/Conv' }, 'NOT_FOUND'],
      ['an unknown model', { model: 'nope' }, 'NOT_FOUND'],
    ];
    for (const [what, change, code] of cases) {
      test(what, async () => {
        const image = { base64: (await picture(112, 112, 7)).toString('base64') };
        const res = await gql(server.url, PROJECTION, { ...good, image, ...change });
        assert.equal(errorCode(res), code, JSON.stringify(res.errors));
        assert.equal(res.errors![0].extensions!.stacktrace, undefined);
        const ok = await gql(server.url, PROJECTION, { ...good, image });
        assert.equal(ok.errors, undefined, 'the server still answers a good query');
      });
    }
  });
});
