/**
 * API contract: global IDs, NOT_FOUND / BAD_USER_INPUT errors that say what exists, a models folder
 * with broken files, no stack traces in errors, and schema.graphql kept in sync with the code.
 *
 * One server for the file, on a temp MODELS_DIR holding a copy of the alexnet fixture (with its
 * sidecar) and three broken models.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errorCode, FIXTURE_MODELS, gql, GqlResult, ROOT, startTestServer } from './helpers';
import { schemaSdl } from '../src/schema';

type Server = Awaited<ReturnType<typeof startTestServer>>;
let server: Server;
let modelsDir: string;

/** Every GraphQL response with errors seen in this file: none may carry a stack trace. */
const errorResponses: { what: string; result: GqlResult }[] = [];

async function q(query: string, variables: Record<string, unknown> = {}, what = query) {
  const r = await gql(server.url, query, variables);
  if (r.errors) errorResponses.push({ what, result: r });
  return r;
}

const NODE_Q = `query($id: ID!) { node(id: $id) { __typename id
  ... on Model { name inputShape }
  ... on Layer { name op outputShape }
  ... on Filter { index layer { name } } } }`;

beforeAll(async () => {
  modelsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-models-'));
  const alexnet = fs.readFileSync(path.join(FIXTURE_MODELS, 'alexnet.onnx'));
  fs.writeFileSync(path.join(modelsDir, 'alexnet.onnx'), alexnet);
  fs.copyFileSync(path.join(FIXTURE_MODELS, 'alexnet.json'), path.join(modelsDir, 'alexnet.json'));
  // cut inside the graph: the protobuf length prefix promises more bytes than there are
  fs.writeFileSync(path.join(modelsDir, 'truncated.onnx'), alexnet.subarray(0, Math.floor(alexnet.length / 2)));
  fs.writeFileSync(path.join(modelsDir, 'x.onnx'), 'this is a text file, not an ONNX model\n');
  // a good model whose sidecar is not JSON
  fs.copyFileSync(path.join(FIXTURE_MODELS, 'vgg.onnx'), path.join(modelsDir, 'badsidecar.onnx'));
  fs.writeFileSync(path.join(modelsDir, 'badsidecar.json'), '{"input": {"size": [64, 64],, }');
  server = await startTestServer({ MODELS_DIR: modelsDir });
});

afterAll(async () => {
  await server?.close();
  if (modelsDir) fs.rmSync(modelsDir, { recursive: true, force: true });
});

describe('a models folder with broken files', () => {
  test('the server starts and serves the good model', async () => {
    const r = await q(`{ models(first: 10) { totalCount nodes { name inputShape } } }`);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    assert.deepEqual(r.data.models.nodes, [{ name: 'alexnet', inputShape: [3, 224, 224] }]);
    assert.equal(r.data.models.totalCount, 1);
    const layers = await q(`{ model(name: "alexnet") { layers(first: 1) { totalCount nodes { name } } } }`);
    assert.equal(layers.errors, undefined, JSON.stringify(layers.errors));
    assert.equal(layers.data.model.layers.totalCount, 20); // see layers.test.ts
  });

  test('modelErrors lists the three bad files, each with a message', async () => {
    const r = await q(`{ modelErrors { file message } }`);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const byFile = new Map<string, string>(r.data.modelErrors.map((e: { file: string; message: string }) => [e.file, e.message]));
    assert.deepEqual([...byFile.keys()].sort(), ['badsidecar.onnx', 'truncated.onnx', 'x.onnx']);
    for (const [file, message] of byFile) {
      assert.ok(message.length > 10, `${file}: "${message}"`);
      assert.doesNotMatch(message, /\n\s+at /, `${file}: message carries a stack trace`);
    }
    assert.match(byFile.get('badsidecar.onnx')!, /badsidecar\.json/);
    assert.match(byFile.get('badsidecar.onnx')!, /JSON/);
    assert.match(byFile.get('truncated.onnx')!, /ONNX/i);
    assert.match(byFile.get('x.onnx')!, /ONNX/i);
  });

  test('asking for a model that failed to load says why', async () => {
    const r = await q(`{ model(name: "truncated") { name } }`);
    assert.equal(errorCode(r), 'NOT_FOUND');
    assert.match(r.errors![0].message, /failed to load/);
    assert.match(r.errors![0].message, /alexnet/, 'lists the models that exist');
  });
});

describe('backend', () => {
  test('says what the server runs on: the backend, the processor and the ONNX Runtime version', async () => {
    const r = await q('{ backend { name device version } }');
    assert.equal(r.errors, undefined);
    assert.equal(r.data.backend.name, 'cpu');
    assert.equal(r.data.backend.device, `${os.cpus()[0].model.trim()} (${os.cpus().length} cores)`);
    assert.match(r.data.backend.version, /^onnxruntime-node \d+\.\d+\.\d+$/);
  });
});

describe('node(id)', () => {
  test('round-trips Model, Layer and Filter IDs', async () => {
    const r = await q(`{ model(name: "alexnet") { id name layer(name: "/features/features.3/Conv") { id name filter(index: 7) { id index } } } }`);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const m = r.data.model;
    const ids = [m.id, m.layer.id, m.layer.filter.id];
    assert.equal(new Set(ids).size, 3, 'IDs are distinct');

    const model = await q(NODE_Q, { id: m.id });
    assert.deepEqual(model.data.node, { __typename: 'Model', id: m.id, name: 'alexnet', inputShape: [3, 224, 224] });

    const layer = await q(NODE_Q, { id: m.layer.id });
    // conv2 k5 p2 on 27×27: 32 × 27 × 27
    assert.deepEqual(layer.data.node, { __typename: 'Layer', id: m.layer.id, name: '/features/features.3/Conv', op: 'Conv', outputShape: [32, 27, 27] });

    const filter = await q(NODE_Q, { id: m.layer.filter.id });
    assert.deepEqual(filter.data.node, { __typename: 'Filter', id: m.layer.filter.id, index: 7, layer: { name: '/features/features.3/Conv' } });
  });

  test('every layer’s ID fetches that layer', async () => {
    const r = await q(`{ model(name: "alexnet") { layers(first: 100) { nodes { id name } } } }`);
    for (const { id, name } of r.data.model.layers.nodes) {
      const n = await q(`query($id: ID!) { node(id: $id) { ... on Layer { name } } }`, { id });
      assert.equal(n.errors, undefined, JSON.stringify(n.errors));
      assert.equal(n.data.node.name, name);
    }
  });

  test('malformed IDs are BAD_USER_INPUT', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64url');
    for (const id of ['', 'hello', '!!!', b64('{"type":"Model"}'), b64('[1, "alexnet"]'), b64('["Model", {"x": 1}]'), b64('["Model"')]) {
      const r = await q(NODE_Q, { id }, `node(${JSON.stringify(id)})`);
      assert.equal(errorCode(r), 'BAD_USER_INPUT', `id ${JSON.stringify(id)} → ${JSON.stringify(r.errors ?? r.data)}`);
    }
  });

  test('an ID of an unknown model or layer is NOT_FOUND', async () => {
    const b64 = (v: unknown[]) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const m = await q(NODE_Q, { id: b64(['Model', 'resnet']) });
    assert.equal(errorCode(m), 'NOT_FOUND');
    const l = await q(NODE_Q, { id: b64(['Layer', 'alexnet', '/nope/Conv']) });
    assert.equal(errorCode(l), 'NOT_FOUND');
    const f = await q(NODE_Q, { id: b64(['Filter', 'alexnet', '/features/features.0/Conv', 16]) });
    assert.equal(errorCode(f), 'BAD_USER_INPUT', 'conv1 has filters 0..15');
  });
});

describe('lookup errors say what exists', () => {
  test('unknown model → NOT_FOUND listing the models', async () => {
    const r = await q(`{ model(name: "googlenet") { name } }`);
    assert.equal(errorCode(r), 'NOT_FOUND');
    assert.equal(r.data, null);
    assert.match(r.errors![0].message, /googlenet/);
    assert.match(r.errors![0].message, /alexnet/);
  });

  test('unknown layer → NOT_FOUND listing layers of that model', async () => {
    const r = await q(`{ model(name: "alexnet") { layer(name: "conv9") { name } } }`);
    assert.equal(errorCode(r), 'NOT_FOUND');
    const msg = r.errors![0].message;
    assert.match(msg, /conv9/);
    assert.ok(msg.includes('/features/features.0/Conv'), msg);
    assert.ok(msg.includes('/features/features.3/Conv'), msg);
  });

  test('filter index out of range → BAD_USER_INPUT naming the valid range', async () => {
    // conv1 has 16 output channels: 0..15
    for (const index of [16, -1, 1000]) {
      const r = await q(`query($i: Int!) { model(name: "alexnet") { layer(name: "/features/features.0/Conv") { filter(index: $i) { index } } } }`, {
        i: index,
      });
      assert.equal(errorCode(r), 'BAD_USER_INPUT', `index ${index}`);
      assert.match(r.errors![0].message, /15/);
    }
    const ok = await q(`{ model(name: "alexnet") { layer(name: "/features/features.0/Conv") { filter(index: 15) { index } } } }`);
    assert.equal(ok.errors, undefined);
    assert.equal(ok.data.model.layer.filter.index, 15);
  });
});

describe('no stack traces in error responses', () => {
  test('parse, validation and variable errors carry none', async () => {
    await q(`{ model(name: "alexnet") { name `, {}, 'syntax error');
    await q(`{ model(name: "alexnet") { noSuchField } }`, {}, 'unknown field');
    await q(
      `query($i: Int!) { model(name: "alexnet") { layer(name: "/features/features.0/Conv") { filter(index: $i) { index } } } }`,
      { i: 'x' },
      'bad variable',
    );
    assert.ok(errorResponses.length >= 3);
  });

  test('a body that is not JSON → 400 without a stack', async () => {
    const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    assert.equal(res.status, 400);
    const text = await res.text();
    assert.doesNotMatch(text, /\n\s+at |stacktrace|node_modules/);
  });

  test('no error response of this file has extensions.stacktrace, and every one has a code', () => {
    assert.ok(errorResponses.length >= 15, `only ${errorResponses.length} error responses collected`);
    for (const { what, result } of errorResponses) {
      for (const e of result.errors!) {
        assert.equal(e.extensions?.stacktrace, undefined, `${what}: ${JSON.stringify(e)}`);
        assert.equal(typeof e.extensions?.code, 'string', `${what}: no code`);
        assert.doesNotMatch(JSON.stringify(e), /\n\s+at |\.ts:\d+|\.js:\d+/, what);
      }
    }
  });
});

test('schema.graphql is up to date with the code', () => {
  const committed = fs.readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8');
  assert.ok(committed === schemaSdl(), 'schema.graphql differs from the schema the code builds: run `npm run schema` and commit the result');
});
