/**
 * Bad input across the whole API surface: names and IDs (path tricks included), pagination,
 * images (bombs, formats, truncation), projection arguments, uploads, query limits and
 * HTTP-level junk. Each case asserts its status and error code, no stack trace, and that the
 * server still answers a good query afterwards. (inference.test.ts covers 14 more: channel and
 * position ranges, image id/base64 mix-ups, unknown layer/model on projections.)
 */
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { gql, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;

const id = (...parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');
const cursor = (text: string) => Buffer.from(text).toString('base64url');

/** A PNG chunk: length, type, data, CRC. */
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

/** A greyscale 8-bit PNG of `width`×`height` whose IDAT is `idat` (default: all black, deflated). */
function png(width: number, height: number, idat?: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const data = idat ?? zlib.deflateSync(Buffer.alloc((width + 1) * height), { level: 9 });
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', data),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const PROJECTION = `query($model: String!, $layer: String!, $index: Int!, $image: ImageInput!, $method: ProjectionMethod, $seed: SeedMode, $position: PositionInput) {
  model(name: $model) { layer(name: $layer) { filter(index: $index) {
    projection(image: $image, method: $method, seed: $seed, position: $position) { seedValue } } } } }`;
const FEATURE_MAPS = `query($image: ImageInput!) { model(name: "zfnet") { layer(name: "/conv1/Conv") { featureMaps(image: $image) { shape } } } }`;
const UPLOAD = `mutation($b: String!) { uploadImage(base64: $b) { id } }`;
const NODE = `query($id: ID!) { node(id: $id) { id } }`;
const GOOD = `{ model(name: "zfnet") { name layers(first: 1) { totalCount } } }`;

interface Reply {
  status: number;
  code?: string;
  text: string;
}

interface Case {
  what: string;
  send: (url: string) => Promise<Reply>;
  status?: number;
  code?: string;
  /** What the message must say, where the code alone does not tell the cases apart. */
  message?: RegExp;
}

async function reply(res: Response): Promise<Reply> {
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]?.extensions?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, text };
}

const query =
  (q: string, variables: Record<string, unknown> = {}) =>
  async (url: string): Promise<Reply> =>
    reply(await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: q, variables }) }));

const http =
  (path: string, init: RequestInit = {}) =>
  async (url: string): Promise<Reply> =>
    reply(await fetch(`${url}${path}`, init));

const postRaw = (body: string, type = 'application/json') => http('/graphql', { method: 'POST', headers: { 'content-type': type }, body });

describe('bad input: each gets its error code and the server goes on', () => {
  let server: Server;
  let good: string;
  let pngBytes: Buffer;
  const cases: Case[] = [];
  const add = (what: string, send: Case['send'], code?: string, status?: number, message?: RegExp) => cases.push({ what, send, code, status, message });
  /** A zfnet conv1 projection with a good image (read when sent), changed by `change`. */
  const proj = (change: Record<string, unknown>) => (url: string) =>
    query(PROJECTION, { model: 'zfnet', layer: '/conv1/Conv', index: 0, image: { base64: good }, ...change })(url);

  beforeAll(async () => {
    server = await startTestServer({ MAX_IMAGE_MB: '1', BODY_LIMIT_MB: '2' });
    pngBytes = await sharp({ create: { width: 112, height: 112, channels: 3, background: '#4080c0' } })
      .png()
      .toBuffer();
    good = pngBytes.toString('base64');
  });
  afterAll(() => server.close());

  // ---- models, layers, names with path tricks
  add('model name with a path', query(`{ model(name: "../zfnet") { name } }`), 'NOT_FOUND');
  add('model name ".."', query(`{ model(name: "..") { name } }`), 'NOT_FOUND');
  add('model name an absolute path', query(`{ model(name: "/etc/passwd") { name } }`), 'NOT_FOUND');
  add('model name with a NUL byte', query(`query($n: String!) { model(name: $n) { name } }`, { n: 'zfnet\u0000.onnx' }), 'NOT_FOUND');
  add('model name of 100 000 characters', query(`query($n: String!) { model(name: $n) { name } }`, { n: 'x'.repeat(100_000) }), 'NOT_FOUND');
  add('model name with a Windows path', query(`{ model(name: "..\\\\..\\\\zfnet") { name } }`), 'NOT_FOUND');
  add('layer name with a path', query(`{ model(name: "zfnet") { layer(name: "../../etc/passwd") { name } } }`), 'NOT_FOUND');
  add('empty layer name', query(`{ model(name: "zfnet") { layer(name: "") { name } } }`), 'NOT_FOUND');

  // ---- pagination
  add('first: 0', query(`{ model(name: "zfnet") { layers(first: 0) { totalCount } } }`), 'BAD_USER_INPUT');
  add('negative first', query(`{ model(name: "zfnet") { layers(first: -5) { totalCount } } }`), 'BAD_USER_INPUT');
  add('first over MAX_PAGE_SIZE', query(`{ model(name: "zfnet") { layers(first: 101) { totalCount } } }`), 'BAD_USER_INPUT');
  add(
    'first on filters over MAX_PAGE_SIZE',
    query(`{ model(name: "zfnet") { layer(name: "/conv1/Conv") { filters(first: 1000) { totalCount } } } }`),
    'BAD_USER_INPUT',
  );
  add('a cursor that is not one', query(`{ models(after: "garbage!") { totalCount } }`), 'BAD_USER_INPUT');
  add('an empty cursor', query(`{ models(after: "") { totalCount } }`), 'BAD_USER_INPUT');
  add('a cursor with a negative offset', query(`query($c: String) { models(after: $c) { totalCount } }`, { c: cursor('offset:-1') }), 'BAD_USER_INPUT');
  add('first over a 32-bit Int', query(`{ models(first: 2147483648) { totalCount } }`), 'GRAPHQL_VALIDATION_FAILED', 400);
  add('first as a string variable', query(`query($n: Int) { models(first: $n) { totalCount } }`, { n: 'ten' }), 'BAD_USER_INPUT', 400);
  add('an unknown layer kind', query(`{ model(name: "zfnet") { layers(kinds: [NOPE]) { totalCount } } }`), 'GRAPHQL_VALIDATION_FAILED', 400);

  // ---- filters
  add('filter index far out of range', query(`{ model(name: "zfnet") { layer(name: "/conv1/Conv") { filter(index: 999999) { index } } } }`), 'BAD_USER_INPUT');
  add(
    'a dense unit out of range (activation)',
    query(`query($i: ImageInput!) { model(name: "misc") { layer(name: "/fc/Gemm") { filter(index: 10) { activation(image: $i) { max } } } } }`, {
      i: { id: 'x' },
    }),
    'BAD_USER_INPUT',
  );

  // ---- node IDs
  add('empty node id', query(NODE, { id: '' }), 'BAD_USER_INPUT');
  add('node id of a JSON object', query(NODE, { id: Buffer.from('{"a":1}').toString('base64url') }), 'BAD_USER_INPUT');
  add('node id with nested arrays', query(NODE, { id: id('Model', ['zfnet']) }), 'BAD_USER_INPUT');
  add('node id of 200 kB', query(NODE, { id: 'A'.repeat(200_000) }), 'BAD_USER_INPUT');
  add('node id of an unknown type', query(NODE, { id: id('Secret', 'x') }), 'NOT_FOUND');
  add('model id with a path', query(NODE, { id: id('Model', '../../etc/passwd') }), 'NOT_FOUND');
  add('layer id of an unknown layer', query(NODE, { id: id('Layer', 'zfnet', '/nope') }), 'NOT_FOUND');
  add('filter id with a non-numeric index', query(NODE, { id: id('Filter', 'zfnet', '/conv1/Conv', 'abc') }), 'BAD_USER_INPUT');
  add('filter id with a fractional index', query(NODE, { id: id('Filter', 'zfnet', '/conv1/Conv', 1.5) }), 'BAD_USER_INPUT');
  add('filter id with a huge index', query(NODE, { id: id('Filter', 'zfnet', '/conv1/Conv', 1e12) }), 'BAD_USER_INPUT');
  add('upload id with a path', query(NODE, { id: id('Image', 'upload', '../../../etc/passwd') }), 'NOT_FOUND');
  add('dataset image id with a path', query(NODE, { id: id('Image', 'dataset', '..', '../../package.json') }), 'NOT_FOUND');
  add('upload id of a numeric ID', query(FEATURE_MAPS, { image: { id: 12345 } }), 'BAD_USER_INPUT');

  // ---- images
  add(
    'a PNG declaring 30000×30000 (a few bytes)',
    async (url) => proj({ image: { base64: png(30000, 30000, zlib.deflateSync(Buffer.alloc(100))).toString('base64') } })(url),
    'BAD_USER_INPUT',
    undefined,
    /30000×30000 pixels is over the limit of 40000000 \(MAX_IMAGE_PIXELS\)/,
  );
  add(
    'a real PNG bomb: 8000×8000 black in 60 kB',
    async (url) => proj({ image: { base64: png(8000, 8000).toString('base64') } })(url),
    'BAD_USER_INPUT',
    undefined,
    /8000×8000 pixels is over the limit/,
  );
  add(
    'an SVG (may reference files)',
    proj({
      image: {
        base64: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="file:///etc/passwd"/></svg>').toString('base64'),
      },
    }),
    'BAD_USER_INPUT',
    undefined,
    /not an image convscope can read/,
  );
  add(
    'a BMP',
    (url) => {
      const bmp = Buffer.alloc(58);
      bmp.write('BM', 0);
      bmp.writeUInt32LE(58, 2);
      bmp.writeUInt32LE(54, 10);
      bmp.writeUInt32LE(40, 14);
      bmp.writeInt32LE(1, 18);
      bmp.writeInt32LE(1, 22);
      bmp.writeUInt16LE(1, 26);
      bmp.writeUInt16LE(24, 28);
      return proj({ image: { base64: bmp.toString('base64') } })(url);
    },
    'BAD_USER_INPUT',
  );
  add('a truncated PNG', (url) => proj({ image: { base64: pngBytes.subarray(0, 60).toString('base64') } })(url), 'BAD_USER_INPUT');
  add(
    'a PNG with corrupt pixel data',
    (url) => proj({ image: { base64: png(64, 64, Buffer.from('definitely not deflate data')).toString('base64') } })(url),
    'BAD_USER_INPUT',
    undefined,
    /could not be decoded/,
  );
  add('an image over MAX_IMAGE_MB', proj({ image: { base64: Buffer.alloc(1_200_000, 7).toString('base64') } }), 'BAD_USER_INPUT', undefined, /MAX_IMAGE_MB/);
  add('base64 with non-ASCII characters', proj({ image: { base64: 'iVBORw0KGgo\u00ff\u2603' } }), 'BAD_USER_INPUT');
  add('empty base64', proj({ image: { base64: '' } }), 'BAD_USER_INPUT');
  add('base64 of only padding', proj({ image: { base64: '====' } }), 'BAD_USER_INPUT');
  add('base64 as a number', proj({ image: { base64: 12345 } }), 'BAD_USER_INPUT', 400);
  add('featureMaps of a malformed image id', query(FEATURE_MAPS, { image: { id: '%%%' } }), 'BAD_USER_INPUT');

  // ---- projection arguments
  add('an unknown projection method', proj({ method: 'MAGIC' }), 'BAD_USER_INPUT', 400);
  add('a fractional position', proj({ seed: 'POSITION', position: { y: 1.5, x: 0 } }), 'BAD_USER_INPUT', 400);
  add('a position over a 32-bit Int', proj({ seed: 'POSITION', position: { y: 2 ** 31, x: 0 } }), 'BAD_USER_INPUT', 400);
  add('a position outside a dense layer’s 1×1 map', proj({ model: 'misc', layer: '/fc/Gemm', seed: 'POSITION', position: { y: 0, x: 1 } }), 'BAD_USER_INPUT');

  // ---- uploads
  add('upload of nothing', query(UPLOAD, { b: '' }), 'BAD_USER_INPUT');
  add('upload of text', query(UPLOAD, { b: Buffer.from('just some words').toString('base64') }), 'BAD_USER_INPUT');
  add(
    'upload of a PNG bomb',
    async (url) => query(UPLOAD, { b: png(20000, 20000, zlib.deflateSync(Buffer.alloc(100))).toString('base64') })(url),
    'BAD_USER_INPUT',
    undefined,
    /20000×20000 pixels is over the limit/,
  );
  add('upload without its argument', query(`mutation { uploadImage { id } }`), 'GRAPHQL_VALIDATION_FAILED', 400);

  // ---- query limits
  add('over MAX_QUERY_COST', query(`{ models(first: 100) { nodes { layers(first: 100) { nodes { name } } } } }`), 'QUERY_TOO_COMPLEX', 400);
  add(
    'over MAX_QUERY_DEPTH',
    query(
      `{ model(name: "zfnet") { layer(name: "/conv1/Conv") { model { layer(name: "/conv1/Conv") { model { layer(name: "/conv1/Conv") { model { layer(name: "/conv1/Conv") { model { layer(name: "/conv1/Conv") { model { layer(name: "/conv1/Conv") { model { layer(name: "/conv1/Conv") { model { layer(name: "/conv1/Conv") { name } } } } } } } } } } } } } } } } }`,
    ),
    'QUERY_TOO_COMPLEX',
    400,
  );
  add('over MAX_ALIASES', query(`{ ${Array.from({ length: 40 }, (_, i) => `m${i}: models { totalCount }`).join(' ')} }`), 'QUERY_TOO_COMPLEX', 400);
  add('over MAX_QUERY_TOKENS', query(`{ models { ${Array.from({ length: 6000 }, () => 'totalCount').join(' ')} } }`), 'QUERY_TOO_COMPLEX', 400);

  // ---- HTTP-level junk
  add('invalid JSON body', postRaw('{"query": "{ models { totalCount } }"'), 'BAD_REQUEST', 400);
  add('a JSON string as body', postRaw('"{ models { totalCount } }"'), 'BAD_REQUEST', 400);
  add('a body over BODY_LIMIT_MB', postRaw(JSON.stringify({ query: GOOD, variables: { pad: 'x'.repeat(3 * 1024 * 1024) } })), 'BAD_USER_INPUT', 413);
  add(
    'JSON nested 100 000 deep',
    postRaw(
      `{"query": "query($k: [LayerKind!]) { model(name: \\"zfnet\\") { layers(kinds: $k) { totalCount } } }", "variables": {"k": ${'['.repeat(100_000)}${']'.repeat(100_000)}}}`,
    ),
    'BAD_USER_INPUT',
    400,
  );
  add('a batch of operations', postRaw(JSON.stringify([{ query: GOOD }, { query: GOOD }])), 'BAD_REQUEST', 400);
  add('a body without a query', postRaw('{}'), 'BAD_REQUEST', 400);
  add('a query that is not a string', postRaw('{"query": 42}'), 'BAD_REQUEST', 400);
  add('variables that are not an object', postRaw(JSON.stringify({ query: GOOD, variables: '{"a":1}' })), 'BAD_REQUEST', 400);
  add('a syntax error', query(`{ models { totalCount `), 'GRAPHQL_PARSE_FAILED', 400);
  add('an unknown field', query(`{ models { passwords } }`), 'GRAPHQL_VALIDATION_FAILED', 400);
  add('an unknown operationName', postRaw(JSON.stringify({ query: GOOD, operationName: 'Nope' })), undefined, 400);
  add(
    'a mutation over GET',
    http(`/graphql?query=${encodeURIComponent('mutation { uploadImage(base64: "eA==") { id } }')}`, { headers: { 'apollo-require-preflight': '1' } }),
    'BAD_REQUEST',
    405,
  );
  add(
    'PUT /graphql',
    http('/graphql', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: GOOD }) }),
    'BAD_REQUEST',
    405,
  );
  add('a text/plain POST (CSRF)', postRaw(JSON.stringify({ query: GOOD }), 'text/plain'), 'BAD_REQUEST', 400);
  add('a blob hash that is not hex', http('/img/..%2f..%2fpackage.json.png'), undefined, 404);
  add('a tensor that does not exist', http(`/tensors/${'0'.repeat(64)}.npy`), undefined, 404);
  add('a GraphiQL asset path with ..', http('/graphiql/..%2f..%2f..%2fpackage.json'), undefined, 404);

  test('at least 50 distinct cases', () => {
    assert.ok(cases.length >= 50, `${cases.length} cases`);
    assert.equal(new Set(cases.map((c) => c.what)).size, cases.length);
  });

  for (const { what, send, code, status, message } of cases) {
    test(what, async () => {
      const r = await send(server.url);
      if (status !== undefined) assert.equal(r.status, status, `${what}: ${r.text.slice(0, 300)}`);
      else assert.ok(r.status === 200 || r.status === 400, `${what}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
      if (code !== undefined) assert.equal(r.code, code, `${what}: ${r.text.slice(0, 300)}`);
      else if (status !== 404) assert.ok(r.text.includes('"errors"'), `${what}: ${r.text.slice(0, 300)}`);
      if (message) assert.match(r.text, message, what);
      assert.doesNotMatch(r.text, /stacktrace|\n\s+at |node_modules/, what);
      const ok = await gql(server.url, GOOD);
      assert.equal(ok.errors, undefined, `after "${what}" the server still answers`);
      assert.equal(ok.data.model.name, 'zfnet');
    });
  }

  test('after all of it, an inference query still works', async () => {
    const res = await gql(server.url, PROJECTION, { model: 'zfnet', layer: '/conv1/Conv', index: 1, image: { base64: good } });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    assert.equal(typeof res.data.model.layer.filter.projection.seedValue, 'number');
  });
});
