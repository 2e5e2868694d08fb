/**
 * Filter weights and kernel pictures, checked against the weights read straight from the .onnx
 * file with a small protobuf wire-format reader (protobufjs's Reader only; none of src/onnx), and
 * against the PNGs decoded with sharp.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import sharp from 'sharp';
import { errorCode, FIXTURE_MODELS, gql, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;
let server: Server;

// ---- an independent ONNX initializer reader ------------------------------------------------------
// onnx.proto: ModelProto.graph = 7; GraphProto.initializer = 5; TensorProto: dims = 1 (int64),
// data_type = 2, float_data = 4 (float, packed), name = 8, raw_data = 9 (little-endian bytes).
interface Initializer {
  dims: number[];
  values: Float32Array;
}

function fields(bytes: Uint8Array, visit: (field: number, wireType: number, r: protobuf.Reader) => boolean): void {
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (!visit(tag >>> 3, tag & 7, r)) r.skipType(tag & 7);
  }
}

function readInitializers(file: string): Map<string, Initializer> {
  const out = new Map<string, Initializer>();
  const bytes = fs.readFileSync(file);
  fields(bytes, (field, wt, r) => {
    if (field !== 7 || wt !== 2) return false;
    fields(r.bytes(), (gf, gwt, gr) => {
      if (gf !== 5 || gwt !== 2) return false;
      let name = '';
      const dims: number[] = [];
      let dataType = 1;
      let raw: Uint8Array | undefined;
      const floats: number[] = [];
      fields(gr.bytes(), (tf, twt, tr) => {
        if (tf === 1 && twt === 0) dims.push(tr.uint32());
        else if (tf === 1 && twt === 2) {
          const end = tr.uint32() + tr.pos;
          while (tr.pos < end) dims.push(tr.uint32());
        } else if (tf === 2 && twt === 0) dataType = tr.uint32();
        else if (tf === 4 && twt === 2) {
          const end = tr.uint32() + tr.pos;
          while (tr.pos < end) floats.push(tr.float());
        } else if (tf === 4 && twt === 5) floats.push(tr.float());
        else if (tf === 8 && twt === 2) name = tr.string();
        else if (tf === 9 && twt === 2) raw = tr.bytes();
        else return false;
        return true;
      });
      if (dataType !== 1) return true; // float tensors only
      let values: Float32Array;
      if (raw && raw.byteLength) {
        const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        values = Float32Array.from({ length: raw.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
      } else values = Float32Array.from(floats);
      assert.equal(
        values.length,
        dims.reduce((a, b) => a * b, 1),
        `initializer ${name}: values vs dims`,
      );
      out.set(name, { dims, values });
      return true;
    });
    return true;
  });
  return out;
}

function stats(w: ArrayLike<number>) {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < w.length; i++) {
    min = Math.min(min, w[i]);
    max = Math.max(max, w[i]);
    sum += w[i];
    sq += w[i] * w[i];
  }
  return { min, max, mean: sum / w.length, l2: Math.sqrt(sq) };
}

function maxAbs(w: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < w.length; i++) m = Math.max(m, Math.abs(w[i]));
  return m;
}

function close(actual: number, expected: number, what: string, rel = 1e-6) {
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1e-12, Math.abs(expected)) + 1e-12, `${what}: ${actual} ≠ ${expected}`);
}

/** The grey level of a weight in a kernel picture: 0 → 127.5, ±maxAbs → 0/255. */
const expectedPixel = (w: number, scale: number) => Math.min(255, Math.max(0, Math.round(127.5 + (w * 127.5) / scale)));

async function fetchPng(url: string) {
  const res = await fetch(`${server.url}${url}`);
  assert.equal(res.status, 200, url);
  const body = Buffer.from(await res.arrayBuffer());
  const { data, info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
  return { res, body, data, info };
}

const WEIGHTS_Q = `query($m: String!, $l: String!, $i: Int!) { model(name: $m) { layer(name: $l) {
  filter(index: $i) { index weights { shape min max mean l2 imageUrl } } } } }`;

async function weightsOf(model: string, layer: string, index: number) {
  const r = await gql(server.url, WEIGHTS_Q, { m: model, l: layer, i: index });
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  return r.data.model.layer.filter.weights;
}

let alexnet: Map<string, Initializer>;
let zfnet: Map<string, Initializer>;

beforeAll(async () => {
  alexnet = readInitializers(path.join(FIXTURE_MODELS, 'alexnet.onnx'));
  zfnet = readInitializers(path.join(FIXTURE_MODELS, 'zfnet.onnx'));
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const CONV1 = '/features/features.0/Conv';

describe('AlexNet conv1 filters (16 × [3, 11, 11], read from features.0.weight)', () => {
  test('the independent reader finds the weight the architecture says', () => {
    // nn.Conv2d(3, 16, 11): weight [16, 3, 11, 11]
    assert.deepEqual(alexnet.get('features.0.weight')?.dims, [16, 3, 11, 11]);
  });

  test('shape, min, max, mean and l2 of every filter equal the file’s weights', async () => {
    const W = alexnet.get('features.0.weight')!;
    const size = 3 * 11 * 11; // 363 weights per filter
    for (let i = 0; i < 16; i++) {
      const got = await weightsOf('alexnet', CONV1, i);
      assert.deepEqual(got.shape, [3, 11, 11]);
      const want = stats(W.values.subarray(i * size, (i + 1) * size));
      close(got.min, want.min, `filter ${i} min`);
      close(got.max, want.max, `filter ${i} max`);
      close(got.mean, want.mean, `filter ${i} mean`, 1e-5);
      close(got.l2, want.l2, `filter ${i} l2`);
    }
  });

  test('imageUrl: an RGB PNG of the kernel, 0 at mid-grey, scaled by the layer’s max |w|', async () => {
    const W = alexnet.get('features.0.weight')!;
    const scale = maxAbs(W.values); // over all 16 filters
    const plane = 11 * 11;
    for (let i = 0; i < 16; i++) {
      const { imageUrl } = await weightsOf('alexnet', CONV1, i);
      assert.match(imageUrl, /^\/img\/[0-9a-f]{64}\.png$/);
      const { data, info } = await fetchPng(imageUrl);
      assert.equal(info.channels, 3, 'RGB');
      assert.equal(info.width, info.height);
      assert.equal(info.width % 11, 0, `width ${info.width} is 11 × an integer upscale`);
      const up = info.width / 11;
      assert.ok(up >= 1);
      // kernel pixel (y, x) → the centre of its up×up block; filter i, channel c: W[i, c, y, x]
      const checkAt = (y: number, x: number) => {
        const py = y * up + Math.floor(up / 2);
        const px = x * up + Math.floor(up / 2);
        for (let c = 0; c < 3; c++) {
          const w = W.values[i * 3 * plane + c * plane + y * 11 + x];
          const got = data[(py * info.width + px) * 3 + c];
          const want = expectedPixel(w, scale);
          assert.ok(Math.abs(got - want) <= 1, `filter ${i} (${y},${x}) ch ${c}: pixel ${got}, expected ${want} (w = ${w})`);
        }
      };
      checkAt(0, 0);
      if (i === 0) for (let y = 0; y < 11; y++) for (let x = 0; x < 11; x++) checkAt(y, x);
    }
  });

  test('the largest |w| of the layer maps to 0 or 255', async () => {
    const W = alexnet.get('features.0.weight')!;
    const scale = maxAbs(W.values);
    const at = W.values.findIndex((v) => Math.abs(v) === scale);
    const plane = 121;
    const i = Math.floor(at / (3 * plane));
    const c = Math.floor((at % (3 * plane)) / plane);
    const y = Math.floor((at % plane) / 11);
    const x = at % 11;
    const { imageUrl } = await weightsOf('alexnet', CONV1, i);
    const { data, info } = await fetchPng(imageUrl);
    const up = info.width / 11;
    const got = data[(y * up * info.width + x * up) * 3 + c];
    assert.equal(got, W.values[at] > 0 ? 255 : 0);
  });

  test('filterGridUrl: one PNG with the 16 kernels in a 4 × 4 grid', async () => {
    const r = await gql(server.url, `{ model(name: "alexnet") { layer(name: "${CONV1}") { filterGridUrl } } }`);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const { data, info } = await fetchPng(r.data.model.layer.filterGridUrl);
    assert.equal(info.channels, 3);
    // ceil(√16) = 4 columns, 4 rows: width = height = 4·(11·u) + 3·gap
    assert.equal(info.width, info.height);
    const W = alexnet.get('features.0.weight')!;
    const scale = maxAbs(W.values);
    const layouts: { u: number; gap: number }[] = [];
    for (let u = 1; u <= 12; u++) for (let gap = 0; gap <= 8; gap++) if (4 * 11 * u + 3 * gap === info.width) layouts.push({ u, gap });
    assert.ok(layouts.length > 0, `${info.width} px is not 4 tiles of 11·u px plus 3 gaps`);
    // The layout whose tiles show the kernels: tile t at row ⌊t/4⌋, column t mod 4 starts with W[t, :, 0, 0]
    // and ends with W[t, :, 10, 10].
    const fits = layouts.filter(({ u, gap }) =>
      Array.from({ length: 16 }, (_, t) => t).every((t) => {
        const tile = 11 * u + gap;
        return [
          [0, 0],
          [10, 10],
          [3, 7],
        ].every(([ky, kx]) => {
          const py = Math.floor(t / 4) * tile + ky * u;
          const px = (t % 4) * tile + kx * u;
          return [0, 1, 2].every((c) => Math.abs(data[(py * info.width + px) * 3 + c] - expectedPixel(W.values[t * 363 + c * 121 + ky * 11 + kx], scale)) <= 1);
        });
      }),
    );
    assert.equal(fits.length, 1, `grid ${info.width}×${info.height}: layouts ${JSON.stringify(layouts)} matching the kernels: ${JSON.stringify(fits)}`);
  });
});

describe('other layers', () => {
  test('a deeper conv has weights but no picture (its kernels do not see the image)', async () => {
    const W = alexnet.get('features.3.weight')!;
    assert.deepEqual(W.dims, [32, 16, 5, 5]); // nn.Conv2d(16, 32, 5)
    const got = await weightsOf('alexnet', '/features/features.3/Conv', 31);
    assert.deepEqual(got.shape, [16, 5, 5]);
    assert.equal(got.imageUrl, null);
    const want = stats(W.values.subarray(31 * 400, 32 * 400)); // 16·5·5 = 400
    close(got.l2, want.l2, 'l2');
    close(got.max, want.max, 'max');
    const r = await gql(server.url, `{ model(name: "alexnet") { layer(name: "/features/features.3/Conv") { filterGridUrl } } }`);
    assert.equal(r.data.model.layer.filterGridUrl, null);
  });

  test('Gemm units have shape [inputs] and the statistics of their weight row', async () => {
    // nn.Linear(1152, 64) → Gemm(transB=1) with weight [64, 1152]; unit i = row i
    const W = alexnet.get('classifier.1.weight')!;
    assert.deepEqual(W.dims, [64, 1152]);
    for (const i of [0, 63]) {
      const got = await weightsOf('alexnet', '/classifier/classifier.1/Gemm', i);
      assert.deepEqual(got.shape, [1152]); // 32·6·6 inputs
      assert.equal(got.imageUrl, null);
      const want = stats(W.values.subarray(i * 1152, (i + 1) * 1152));
      close(got.min, want.min, `unit ${i} min`);
      close(got.max, want.max, `unit ${i} max`);
      close(got.mean, want.mean, `unit ${i} mean`, 1e-5);
      close(got.l2, want.l2, `unit ${i} l2`);
    }
    const last = await weightsOf('alexnet', '/classifier/classifier.6/Gemm', 9);
    assert.deepEqual(last.shape, [64]); // nn.Linear(64, 10)
  });

  test('a ReLU has no weights', async () => {
    const got = await weightsOf('alexnet', '/features/features.1/Relu', 0);
    assert.equal(got, null);
  });

  test('grouped conv (ZFNet conv2, groups 2): shape [C/groups, kh, kw] = [8, 5, 5]', async () => {
    assert.deepEqual(zfnet.get('conv2.weight')?.dims, [32, 8, 5, 5]); // nn.Conv2d(16, 32, 5, groups=2)
    const got = await weightsOf('zfnet', '/conv2/Conv', 20);
    assert.deepEqual(got.shape, [8, 5, 5]);
    const want = stats(zfnet.get('conv2.weight')!.values.subarray(20 * 200, 21 * 200));
    close(got.l2, want.l2, 'l2');
  });

  test('a BGR model’s kernel picture is shown in RGB order (ZFNet, Caffe-style BGR input)', async () => {
    const W = zfnet.get('conv1.weight')!;
    assert.deepEqual(W.dims, [16, 3, 7, 7]);
    const scale = maxAbs(W.values);
    const i = 5;
    const { imageUrl } = await weightsOf('zfnet', '/conv1/Conv', i);
    const { data, info } = await fetchPng(imageUrl);
    assert.equal(info.width % 7, 0);
    const up = info.width / 7;
    // weight channel 0 is B, 2 is R: PNG channel c (R, G, B) shows weight channel 2 - c
    for (const [y, x] of [
      [0, 0],
      [3, 4],
      [6, 6],
    ]) {
      const p = (y * up * info.width + x * up) * 3;
      for (let c = 0; c < 3; c++) {
        const w = W.values[i * 147 + (2 - c) * 49 + y * 7 + x];
        assert.ok(Math.abs(data[p + c] - expectedPixel(w, scale)) <= 1, `(${y},${x}) PNG channel ${c}`);
      }
    }
  });
});

describe('/img side route', () => {
  test('ETag = the content hash, immutable Cache-Control, image/png; the same filter gives the same URL', async () => {
    const { imageUrl } = await weightsOf('alexnet', CONV1, 3);
    const again = await weightsOf('alexnet', CONV1, 3);
    assert.equal(again.imageUrl, imageUrl);
    const hash = /\/img\/([0-9a-f]{64})\.png$/.exec(imageUrl)![1];
    const { res, body } = await fetchPng(imageUrl);
    assert.equal(createHash('sha256').update(body).digest('hex'), hash, 'content-addressed: the name is the sha256 of the bytes');
    assert.equal(res.headers.get('etag'), `"${hash}"`);
    const cc = res.headers.get('cache-control') ?? '';
    assert.match(cc, /immutable/);
    assert.match(cc, /max-age=\d{7,}/);
    assert.equal(res.headers.get('content-type'), 'image/png');
  });

  test('If-None-Match with the ETag → 304 and no body; another ETag → 200', async () => {
    const { imageUrl } = await weightsOf('alexnet', CONV1, 4);
    const first = await fetch(`${server.url}${imageUrl}`);
    const etag = first.headers.get('etag')!;
    await first.arrayBuffer();
    const cached = await fetch(`${server.url}${imageUrl}`, { headers: { 'if-none-match': etag } });
    assert.equal(cached.status, 304);
    assert.equal((await cached.arrayBuffer()).byteLength, 0);
    const listed = await fetch(`${server.url}${imageUrl}`, { headers: { 'if-none-match': `"abc", W/${etag}` } });
    assert.equal(listed.status, 304, 'a weak ETag in a list matches');
    await listed.arrayBuffer();
    const other = await fetch(`${server.url}${imageUrl}`, { headers: { 'if-none-match': '"0000"' } });
    assert.equal(other.status, 200);
    assert.ok((await other.arrayBuffer()).byteLength > 0);
  });

  test('an unknown or malformed hash → 404', async () => {
    for (const p of [`/img/${'0'.repeat(64)}.png`, '/img/not-a-hash.png', `/tensors/${'a'.repeat(64)}.npy`]) {
      const res = await fetch(`${server.url}${p}`);
      assert.equal(res.status, 404, p);
      await res.arrayBuffer();
    }
  });
});

describe('filter lookup errors', () => {
  test('filter(index: 16) of a 16-filter layer is BAD_USER_INPUT', async () => {
    const r = await gql(server.url, WEIGHTS_Q, { m: 'alexnet', l: CONV1, i: 16 });
    assert.equal(errorCode(r), 'BAD_USER_INPUT');
  });
});
