/**
 * Hardening: query limits (cost, depth, aliases, directives, tokens, validation work,
 * introspection), CSRF prevention, backpressure (OVERLOADED with a retry hint), time limits,
 * work dropped for clients that went away, graceful shutdown of `node dist/src/main.js`, and
 * hostile ONNX files in MODELS_DIR.
 */
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { getIntrospectionQuery, parse } from 'graphql';
import { createClient } from 'graphql-ws';
import sharp from 'sharp';
import WebSocket from 'ws';
import { Engine } from '../src/engine/engine';
import { openRuntime } from '../src/engine/runtime';
import { queryCost } from '../src/http/query-limits';
import { decodeModel, encodeModel, ModelProto, NodeProto, TensorProto } from '../src/onnx/proto';
import { ModelRegistry } from '../src/registry/models';
import { buildAppSchema } from '../src/schema';
import { errorCode, FIXTURE_MODELS, gql, GqlResult, ROOT, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A MODELS_DIR holding only zfnet (fast to load): for the servers started with special settings. */
function zfnetOnly(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-zf-'));
  for (const f of ['zfnet.onnx', 'zfnet.json']) fs.copyFileSync(path.join(FIXTURE_MODELS, f), path.join(dir, f));
  return dir;
}

async function grey(size: number, level = 128): Promise<string> {
  const png = await sharp({ create: { width: size, height: size, channels: 3, background: { r: level, g: 255 - level, b: level / 2 } } })
    .png()
    .toBuffer();
  return png.toString('base64');
}

/** Projections of zfnet conv1 filters, all on one image. */
const projections = (indices: number[]) =>
  `query($image: ImageInput!) { model(name: "zfnet") { layer(name: "/conv1/Conv") { ${indices
    .map((i) => `f${i}: filter(index: ${i}) { projection(image: $image) { seedValue } }`)
    .join(' ')} } } }`;

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: JSON.parse(text) as GqlResult, text };
}

/** Waits until `check` holds (polling), failing after `ms`. */
async function until(check: () => boolean, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Every error response seen in this file: none may carry a stack trace. */
const seen: GqlResult[] = [];
const record = <T extends GqlResult>(r: T) => (seen.push(r), r);

describe('query limits (default settings)', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  const q = async (query: string, variables: Record<string, unknown> = {}) => record(await gql(server.url, query, variables));

  test('a query over MAX_QUERY_COST gets 400 QUERY_TOO_COMPLEX with its cost and the limit, and nothing runs', async () => {
    const image = { base64: await grey(112) };
    const query = `query($image: ImageInput!, $n: Int) { model(name: "zfnet") { layer(name: "/conv1/Conv") {
      filters(first: $n) { nodes { projection(image: $image) { seedValue imageUrl } } } } } }`;
    const cost = queryCost(buildAppSchema(), { document: parse(query), variables: { image, n: 100 } });
    assert.ok(cost > 10_000, `cost ${cost}`);
    const items = server.services.engine.stats.items;
    const res = await q(query, { image, n: 100 });
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'QUERY_TOO_COMPLEX');
    assert.equal(res.errors![0].extensions!.cost, cost);
    assert.equal(res.errors![0].extensions!.maxCost, 10_000);
    assert.match(res.errors![0].message, new RegExp(`${cost}.*10000.*MAX_QUERY_COST`));
    assert.equal(res.data, undefined);
    assert.equal(server.services.engine.stats.items, items, 'no inference ran');
    // the same query with a small page is priced by its variables and runs
    const small = await q(query, { image, n: 2 });
    assert.equal(small.errors, undefined, JSON.stringify(small.errors));
    assert.equal(small.data.model.layer.filters.nodes.length, 2);
  });

  test('prices: a field 1, a projection 100, an activation 50, a connection times its `first` (default 20)', () => {
    const schema = buildAppSchema();
    const cost = (query: string, variables: Record<string, unknown> = {}) => queryCost(schema, { document: parse(query), variables });
    assert.equal(cost('{ model(name: "m") { name } }'), 2);
    const img = { image: { id: 'x' } };
    assert.equal(
      cost('query($image: ImageInput!) { model(name: "m") { layer(name: "l") { filter(index: 0) { projection(image: $image) { seedValue } } } } }', img),
      3 + 100 + 1,
    );
    assert.equal(
      cost('query($image: ImageInput!) { model(name: "m") { layer(name: "l") { filter(index: 0) { activation(image: $image) { max } } } } }', img),
      3 + 50 + 1,
    );
    assert.equal(cost('{ models { nodes { name } } }'), 1 + 20 * 2);
    assert.equal(cost('{ models(first: 3) { nodes { name } totalCount } }'), 1 + 3 * 3);
    assert.equal(cost('query($n: Int) { models(first: $n) { nodes { name } } }', { n: 7 }), 1 + 7 * 2);
  });

  test('MAX_QUERY_DEPTH (16): 16 levels pass, 17 get QUERY_TOO_COMPLEX with the limit', async () => {
    // model { layer { model { layer { … name } } } }: each level one field deeper
    const nest = (levels: number) => {
      let body = 'name';
      for (let d = levels - 1; d >= 1; d--) {
        const field = d === 1 ? 'model(name: "zfnet")' : d % 2 === 0 ? 'layer(name: "/conv1/Conv")' : 'model';
        body = `${field} { ${body} }`;
      }
      return `{ ${body} }`;
    };
    const ok = await q(nest(16));
    assert.equal(ok.errors, undefined, JSON.stringify(ok.errors));
    const deep = await q(nest(17));
    assert.equal(deep.status, 400);
    assert.equal(errorCode(deep), 'QUERY_TOO_COMPLEX');
    assert.equal(deep.errors![0].extensions!.limit, 16);
    assert.equal(deep.errors![0].extensions!.found, 17);
    assert.match(deep.errors![0].message, /depth.*16.*MAX_QUERY_DEPTH/);
  });

  test('MAX_ALIASES (32) and MAX_DIRECTIVES (50)', async () => {
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: model(name: "zfnet") { name }`).join(' ')} }`;
    assert.equal((await q(aliases(32))).errors, undefined);
    const many = await q(aliases(33));
    assert.equal(many.status, 400);
    assert.equal(errorCode(many), 'QUERY_TOO_COMPLEX');
    assert.equal(many.errors![0].extensions!.limit, 32);
    assert.match(many.errors![0].message, /aliases.*MAX_ALIASES/);
    const directives = await q(`{ model(name: "zfnet") { ${Array.from({ length: 51 }, () => 'name @include(if: true)').join(' ')} } }`);
    assert.equal(directives.status, 400);
    assert.equal(errorCode(directives), 'QUERY_TOO_COMPLEX');
    assert.match(directives.errors![0].message, /directives.*MAX_DIRECTIVES/);
  });

  test('MAX_QUERY_TOKENS (5000), and documents too large to validate, are refused with 400 before any work', async () => {
    const tokens = await q(`{ ${Array.from({ length: 6000 }, () => '__typename').join(' ')} }`);
    assert.equal(tokens.status, 400);
    assert.equal(errorCode(tokens), 'QUERY_TOO_COMPLEX');
    assert.match(tokens.errors![0].message, /5000 tokens.*MAX_QUERY_TOKENS/);
    // 3 000 identical fields: graphql-js's budget for comparing fields runs out
    const started = Date.now();
    const wide = await q(`{ ${Array.from({ length: 3000 }, () => '__typename').join(' ')} }`);
    assert.equal(wide.status, 400);
    assert.equal(errorCode(wide), 'QUERY_TOO_COMPLEX');
    // fragments that spread each other 2^20 times
    const fragments = Array.from({ length: 20 }, (_, i) => `fragment F${i + 1} on Query { ...F${i} ...F${i} }`).join('\n');
    const bomb = await q(`{ ...F20 }\nfragment F0 on Query { models { totalCount } }\n${fragments}`);
    assert.equal(bomb.status, 400, JSON.stringify(bomb.errors));
    assert.equal(errorCode(bomb), 'QUERY_TOO_COMPLEX');
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });

  test('introspection stays on and is priced: GraphiQL’s query passes, geometric nesting does not', async () => {
    const full = await q(getIntrospectionQuery({ descriptions: true, inputValueDeprecation: true }));
    assert.equal(full.errors, undefined, JSON.stringify(full.errors));
    assert.ok(full.data.__schema.types.length > 20);
    assert.ok(queryCost(buildAppSchema(), { document: parse(getIntrospectionQuery()) }) < 10_000);
    let sel = 'name';
    for (let i = 0; i < 6; i++) sel = `fields { type { ofType { ${sel} } } }`;
    const document = `{ __schema { types { ${sel} } } }`;
    // refused by graphql-js's introspection depth rule, and priced over the limit as well
    assert.ok(queryCost(buildAppSchema(), { document: parse(document) }) > 10_000);
    const nested = await q(document);
    assert.equal(nested.status, 400);
    assert.equal(errorCode(nested), 'QUERY_TOO_COMPLEX');
  });

  test('batched requests are refused', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
    });
    assert.equal(res.status, 400);
  });

  test('CSRF prevention: simple requests without a preflight header are refused and not run', async () => {
    const before = fs.readdirSync(path.join(server.cacheDir, 'uploads')).length;
    const png = await grey(16, 3);
    const mutation = JSON.stringify({ query: `mutation { uploadImage(base64: "${png}") { id } }` });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': type }, body: mutation });
      assert.equal(res.status, 400, type);
      assert.match(await res.text(), /CSRF/, type);
    }
    assert.equal(fs.readdirSync(path.join(server.cacheDir, 'uploads')).length, before, 'the mutation did not run');
    const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ __typename }')}`);
    assert.equal(get.status, 400);
    const preflighted = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, { headers: { 'apollo-require-preflight': 'true' } });
    assert.equal(preflighted.status, 200);
  });

  test('the limits hold for operations sent over the WebSocket too', async () => {
    const client = createClient({ url: `${server.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0 });
    const run = (query: string) =>
      new Promise<{ data?: unknown; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }>((resolve, reject) => {
        let result: { data?: unknown; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] } = {};
        client.subscribe(
          { query },
          {
            next: (r) => (result = r as typeof result),
            // graphql-ws answers errors of execution and validation as messages, and a document it
            // cannot parse by closing the socket (4500) with the parser's message
            error: (e) =>
              Array.isArray(e)
                ? resolve({ errors: e })
                : (e as { code?: number; reason?: string }).code === 4500
                  ? resolve({ errors: [{ message: String((e as { reason?: string }).reason) }] })
                  : reject(e),
            complete: () => resolve(result),
          },
        );
      });
    try {
      const ok = await run(`{ models { totalCount } }`);
      assert.equal(ok.errors, undefined, JSON.stringify(ok.errors));
      const costly = await run(`{ models(first: 100) { nodes { layers(first: 100) { nodes { name } } } } }`);
      assert.equal(costly.errors?.[0]?.extensions?.code, 'QUERY_TOO_COMPLEX', JSON.stringify(costly));
      const aliases = await run(`{ ${Array.from({ length: 40 }, (_, i) => `a${i}: models { totalCount }`).join(' ')} }`);
      assert.match(JSON.stringify(aliases.errors), /MAX_ALIASES/);
      // last: this one closes the socket
      const tokens = await run(`{ ${Array.from({ length: 6000 }, () => '__typename').join(' ')} }`);
      assert.match(JSON.stringify(tokens.errors), /5000 tokens|more tha[nt] 5000 tokens/);
    } finally {
      await client.dispose();
    }
  });

  test('an unexpected error keeps no stack trace', async () => {
    const registry = server.services.registry;
    const original = registry.names;
    registry.names = () => {
      throw new TypeError('boom in a resolver');
    };
    try {
      const res = await q(`{ model(name: "no-such-model") { name } }`);
      assert.equal(errorCode(res), 'INTERNAL_SERVER_ERROR');
      assert.equal(res.errors![0].extensions!.stacktrace, undefined);
      assert.doesNotMatch(JSON.stringify(res), /\n\s+at |node_modules|\.ts:\d+/);
    } finally {
      registry.names = original;
    }
  });
});

describe('backpressure and time limits', () => {
  let modelsDir: string;
  beforeAll(() => {
    modelsDir = zfnetOnly();
  });
  afterAll(() => fs.rmSync(modelsDir, { recursive: true, force: true }));

  test('over MAX_QUEUED_ITEMS a request fails fast with OVERLOADED, retryAfterMs, HTTP 503 and Retry-After', async () => {
    const server = await startTestServer({ MODELS_DIR: modelsDir, MAX_QUEUED_ITEMS: '2', BATCH_WINDOW_MS: '400', BATCH_IDLE_START: 'false' });
    try {
      const image = { base64: await grey(112) };
      const started = Date.now();
      const first = post(server.url, { query: projections([0, 1]), variables: { image } });
      await until(() => server.services.engine.queued === 2, 5000, 'two queued items');
      const refused = await post(server.url, { query: projections([2]), variables: { image } });
      const refusedAfter = Date.now() - started;
      assert.equal(refused.status, 503);
      assert.equal(errorCode(refused.body), 'OVERLOADED');
      const ext = refused.body.errors![0].extensions!;
      assert.ok(Number(ext.retryAfterMs) >= 100, `retryAfterMs ${ext.retryAfterMs}`);
      assert.equal(ext.limit, 2);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      assert.match(refused.body.errors![0].message, /MAX_QUEUED_ITEMS/);
      const ok = await first;
      assert.equal(ok.status, 200);
      assert.equal(ok.body.errors, undefined, JSON.stringify(ok.body.errors));
      assert.ok(refusedAfter < Date.now() - started, 'the refusal came before the queued work was done');
      // with room again, the same request runs
      const retry = await post(server.url, { query: projections([2]), variables: { image } });
      assert.equal(retry.body.errors, undefined, JSON.stringify(retry.body.errors));
      assert.equal(server.services.engine.queued, 0);
    } finally {
      await server.close();
    }
  });

  test('an occlusion cut short while it waits for a batch (its queued one dropped) fails cleanly: no unhandled rejection, the server lives on', async () => {
    // 3,721 positions one per run, one running and one queued: at REQUEST_TIMEOUT_MS the queued
    // run is dropped while the occlusion waits for the running one. (625 positions in batches of
    // 16 sometimes finished within the limit; these take about 50 s unlimited on a loaded 2-core VM.)
    const server = await startTestServer({ MODELS_DIR: modelsDir, MAX_BATCH: '1', REQUEST_TIMEOUT_MS: '1500' });
    const unhandled: unknown[] = [];
    const hear = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', hear);
    try {
      const query = `query($image: ImageInput!) { model(name: "zfnet") { occlusion(image: $image, size: 52, stride: 1) { width height } } }`;
      const cut = record(await post(server.url, { query, variables: { image: { base64: await grey(112, 40) } } }));
      assert.equal(cut.status, 504, cut.text);
      assert.equal(errorCode(cut.body), 'TIMEOUT');
      await sleep(300);
      assert.deepEqual(unhandled.map(String), [], 'no failure went unhandled');
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'the server is still up');
    } finally {
      process.off('unhandledRejection', hear);
      await server.close();
    }
  });

  test('over MAX_INFLIGHT_REQUESTS a request is refused at once (503, OVERLOADED, Retry-After) before its body is read', async () => {
    const server = await startTestServer({ MODELS_DIR: modelsDir, MAX_INFLIGHT_REQUESTS: '2', BATCH_WINDOW_MS: '500', BATCH_IDLE_START: 'false' });
    try {
      const image = { base64: await grey(112, 20) };
      const slow = [post(server.url, { query: projections([9]), variables: { image } }), post(server.url, { query: projections([10]), variables: { image } })];
      await until(() => server.services.engine.queued === 2, 5000, 'two requests in flight');
      const health = (await (await fetch(`${server.url}/healthz`)).json()) as { requests: { inFlight: number; limit: number } };
      assert.deepEqual([health.requests.inFlight, health.requests.limit], [2, 2]);
      const started = Date.now();
      const refused = await post(server.url, { query: `{ models { totalCount } }` });
      assert.ok(Date.now() - started < 400, 'refused without waiting');
      assert.equal(refused.status, 503);
      assert.equal(errorCode(refused.body), 'OVERLOADED');
      assert.match(refused.body.errors![0].message, /MAX_INFLIGHT_REQUESTS/);
      assert.ok(Number(refused.body.errors![0].extensions!.retryAfterMs) >= 100);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      for (const r of await Promise.all(slow)) assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
      const after = await post(server.url, { query: `{ models { totalCount } }` });
      assert.equal(after.status, 200);
    } finally {
      await server.close();
    }
  });

  test('REQUEST_TIMEOUT_MS: waiting work is dropped and the request fails with TIMEOUT (504) on time', async () => {
    const server = await startTestServer({ MODELS_DIR: modelsDir, BATCH_WINDOW_MS: '1500', BATCH_IDLE_START: 'false', REQUEST_TIMEOUT_MS: '300' });
    try {
      const image = { base64: await grey(112, 40) };
      const { stats } = server.services.engine;
      const [items, dropped] = [stats.items, stats.dropped];
      const started = Date.now();
      const res = await post(server.url, { query: projections([3]), variables: { image } });
      const took = Date.now() - started;
      assert.equal(res.status, 504);
      assert.equal(errorCode(res.body), 'TIMEOUT');
      assert.match(res.body.errors![0].message, /300 ms.*REQUEST_TIMEOUT_MS/);
      assert.ok(took < 1200, `answered after ${took} ms`);
      await sleep(1700);
      assert.equal(stats.items, items, 'the dropped item never ran');
      assert.equal(stats.dropped, dropped + 1);
      assert.equal(server.services.engine.queued, 0);
    } finally {
      await server.close();
    }
  });

  test('work queued for a client that has gone away is dropped before it runs', async () => {
    const server = await startTestServer({ MODELS_DIR: modelsDir, BATCH_WINDOW_MS: '600', BATCH_IDLE_START: 'false' });
    try {
      const image = { base64: await grey(112, 70) };
      const { stats } = server.services.engine;
      const [items, dropped] = [stats.items, stats.dropped];
      const req = http.request(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      req.on('error', () => undefined);
      req.end(JSON.stringify({ query: projections([4, 5]), variables: { image } }));
      await until(() => server.services.engine.queued === 2, 5000, 'queued items');
      req.destroy();
      await until(() => stats.dropped === dropped + 2, 2000, 'the items to be dropped');
      assert.equal(server.services.engine.queued, 0);
      await sleep(800); // past the batch window
      assert.equal(stats.items, items, 'nothing ran for the client that left');
      const ok = await post(server.url, { query: projections([4]), variables: { image } });
      assert.equal(ok.body.errors, undefined, JSON.stringify(ok.body.errors));
      assert.equal(stats.items, items + 1);
    } finally {
      await server.close();
    }
  });

  test('a request that shares a computation with a client that left still gets its answer', async () => {
    const server = await startTestServer({ MODELS_DIR: modelsDir, BATCH_WINDOW_MS: '600', BATCH_IDLE_START: 'false' });
    try {
      const image = { base64: await grey(112, 150) };
      const body = JSON.stringify({ query: projections([11]), variables: { image } });
      const { stats } = server.services.engine;
      const [items, dropped] = [stats.items, stats.dropped];
      const leaving = http.request(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      leaving.on('error', () => undefined);
      leaving.end(body);
      await until(() => server.services.engine.queued === 1, 5000, 'the first request queued');
      const staying = post(server.url, JSON.parse(body));
      const health = async () => ((await (await fetch(`${server.url}/healthz`)).json()) as { requests: { inFlight: number } }).requests.inFlight;
      const end = Date.now() + 5000;
      while ((await health()) < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      await sleep(50); // the second has joined the computation in flight
      assert.equal(server.services.engine.queued, 1, 'one computation for both');
      leaving.destroy();
      const res = await staying;
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(typeof res.body.data.model.layer.f11.projection.seedValue, 'number');
      assert.equal(stats.dropped, dropped + 1, "the first one's item was dropped");
      assert.equal(stats.items, items + 1, 'and the second ran its own');
    } finally {
      await server.close();
    }
  });
});

describe('graceful shutdown of node dist/src/main.js', () => {
  let modelsDir: string;
  beforeAll(() => {
    modelsDir = zfnetOnly();
  });
  afterAll(() => fs.rmSync(modelsDir, { recursive: true, force: true }));

  /** Starts main.js on a free port; resolves with its URL once it is ready. */
  async function spawnServer(
    env: Record<string, string>,
  ): Promise<{ child: ChildProcess; url: string; cacheDir: string; exited: Promise<number | null>; logs: string[] }> {
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-main-'));
    const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js')], {
      env: { ...process.env, MODELS_DIR: modelsDir, CACHE_DIR: cacheDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', REDIS_URL: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      let buffer = '';
      const timer = setTimeout(() => reject(new Error(`main.js did not start: ${logs.join('')}`)), 60_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          logs.push(line);
          try {
            const entry = JSON.parse(line) as { msg?: string; url?: string };
            if (entry.msg === 'convscope ready' && entry.url) {
              clearTimeout(timer);
              resolve(entry.url.replace(/\/graphql$/, ''));
            }
          } catch {
            // not JSON
          }
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
      void exited.then((code) => reject(new Error(`main.js exited (${code}) before it was ready: ${logs.join('\n')}`)));
    });
    return { child, url, cacheDir, exited, logs };
  }

  test('SIGTERM: the request in flight completes, new connections are refused, the process exits 0, no temp files are left', async () => {
    const { child, url, cacheDir, exited, logs } = await spawnServer({ BATCH_WINDOW_MS: '1500', BATCH_IDLE_START: 'false', SHUTDOWN_TIMEOUT_MS: '10000' });
    try {
      const image = { base64: await grey(112, 90) };
      const started = Date.now();
      const inFlight = post(url, { query: projections([6, 7]), variables: { image } });
      await sleep(400); // the request is waiting in the batcher (1.5 s window)
      child.kill('SIGTERM');
      await sleep(150);
      await assert.rejects(fetch(`${url}/healthz`), 'no new connections once stopping');
      const res = await inFlight;
      assert.equal(res.status, 200);
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(typeof res.body.data.model.layer.f6.projection.seedValue, 'number');
      assert.ok(Date.now() - started >= 1400, 'it really was in flight during the shutdown');
      assert.equal(await exited, 0, logs.join('\n'));
      assert.ok(
        logs.some((l) => l.includes('"msg":"stopped"')),
        logs.join('\n'),
      );
      const leftovers = (fs.readdirSync(cacheDir, { recursive: true }) as string[]).filter((f) => f.endsWith('.tmp'));
      assert.deepEqual(leftovers, []);
      assert.ok(fs.readdirSync(path.join(cacheDir, 'uploads')).length >= 1, 'the inline image was kept');
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  test('SIGTERM with a request slower than SHUTDOWN_TIMEOUT_MS: cut at the deadline, exit 0', async () => {
    const { child, url, cacheDir, exited, logs } = await spawnServer({ BATCH_WINDOW_MS: '20000', BATCH_IDLE_START: 'false', SHUTDOWN_TIMEOUT_MS: '700' });
    try {
      const image = { base64: await grey(112, 91) };
      const inFlight = post(url, { query: projections([8]), variables: { image } }).then(
        (r) => r.status,
        () => 'cut',
      );
      await sleep(300);
      const signalled = Date.now();
      child.kill('SIGTERM');
      assert.equal(await exited, 0, logs.join('\n'));
      const took = Date.now() - signalled;
      assert.ok(took < 4000, `exited ${took} ms after SIGTERM`);
      assert.equal(await inFlight, 'cut');
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});

describe('hostile ONNX files in MODELS_DIR', () => {
  let dir: string;
  let engine: Engine;
  let registry: ModelRegistry;
  let loadMs: number;
  const base = () => decodeModel(fs.readFileSync(path.join(FIXTURE_MODELS, 'zfnet.onnx')));
  const write = (name: string, model: ModelProto | Buffer) =>
    fs.writeFileSync(path.join(dir, `${name}.onnx`), Buffer.isBuffer(model) ? model : Buffer.from(encodeModel(model)));
  const external = (location: string): Partial<TensorProto> => ({ dataLocation: 1, externalData: [{ key: 'location', value: location }], rawData: undefined });
  const relu = (input: string, output: string, name: string): NodeProto => ({ opType: 'Relu', input: [input], output: [output], name });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-hostile-'));
    fs.copyFileSync(path.join(FIXTURE_MODELS, 'zfnet.onnx'), path.join(dir, 'good.onnx'));
    fs.copyFileSync(path.join(FIXTURE_MODELS, 'zfnet.json'), path.join(dir, 'good.json'));
    const bytes = fs.readFileSync(path.join(FIXTURE_MODELS, 'zfnet.onnx'));
    write('truncated', bytes.subarray(0, bytes.length - 1000));
    write('empty', Buffer.alloc(0));
    write(
      'png-magic',
      await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } })
        .png()
        .toBuffer(),
    );
    write('random', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) & 255)));

    let m = base();
    m.graph.input![0].type!.tensorType!.shape!.dim = [{ dimValue: 1 }, { dimValue: 3 }, { dimValue: 100000 }, { dimValue: 100000 }];
    write('absurd-input', m);

    m = base();
    m.graph.input![0].type!.tensorType!.shape!.dim = [{ dimValue: 1 }, { dimValue: 64 }, { dimValue: 1024 }, { dimValue: 1024 }];
    write('input-elements', m);

    m = base();
    Object.assign(m.graph.initializer![0], { dims: [1_000_000_000, 1_000_000_000] });
    write('absurd-weight', m);

    m = base();
    Object.assign(m.graph.initializer![0], { dims: [-1, 3, 7, 7] });
    write('negative-dim', m);

    m = base();
    Object.assign(m.graph.initializer![0], external('../../../../../etc/passwd'));
    write('external-initializer', m);

    m = base();
    m.graph.node.push({
      opType: 'Constant',
      input: [],
      output: ['c_ext'],
      name: 'c_ext',
      attribute: [{ name: 'value', type: 4, t: { dims: [1], dataType: 1, ...external('/etc/passwd') } }],
    });
    write('external-constant', m);

    m = base();
    const branch = { name: 'then', node: [], initializer: [{ name: 'w_ext', dims: [1], dataType: 1, ...external('secrets.bin') }], output: [] };
    m.graph.node.push({
      opType: 'If',
      input: ['cond'],
      output: ['if_out'],
      name: 'if',
      attribute: [
        { name: 'then_branch', type: 5, g: branch },
        { name: 'else_branch', type: 5, g: branch },
      ],
    });
    write('external-subgraph', m);

    m = base();
    m.graph.node.push({
      opType: 'Loop',
      input: ['', ''],
      output: ['loop_out'],
      name: 'forever',
      attribute: [{ name: 'body', type: 5, g: { name: 'body', node: [] } }],
    });
    write('unbounded-loop', m);

    m = base();
    let inner: ModelProto['graph'] = { name: 'g0', node: [] };
    for (let i = 1; i <= 20; i++)
      inner = { name: `g${i}`, node: [{ opType: 'If', input: ['c'], output: [`o${i}`], attribute: [{ name: 'then_branch', type: 5, g: inner }] }] };
    m.graph.node.push(...inner.node);
    write('nested-subgraphs', m);

    // huge repeated field: 150 000 nodes
    m = base();
    const first = m.graph.node[0].output[0];
    for (let i = 0; i < 150_000; i++) m.graph.node.push(relu(i ? `r${i - 1}` : first, `r${i}`, `r${i}`));
    write('too-many-nodes', m);

    // 60 000 nodes in reverse order, reading a tensor nothing produces: no quadratic sort
    m = base();
    const chain: NodeProto[] = [];
    for (let i = 0; i < 60_000; i++) chain.push(relu(i ? `q${i - 1}` : 'nowhere', `q${i}`, `q${i}`));
    m.graph.node.push(...chain.reverse());
    write('dangling-reversed', m);

    fs.writeFileSync(path.join(dir, 'big.onnx'), Buffer.alloc(9 * 1024 * 1024));
    execFileSync('mkfifo', [path.join(dir, 'fifo.onnx')]);

    engine = new Engine(await openRuntime('cpu', 1), { maxBatch: 4, windowMs: 1 });
    const started = Date.now();
    registry = await ModelRegistry.load(dir, engine.runtime, { maxModelBytes: 8 * 1024 * 1024, maxModelInputElements: 4 * 1024 * 1024 });
    loadMs = Date.now() - started;
  });
  afterAll(async () => {
    await engine?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const expected: [string, RegExp][] = [
    ['truncated.onnx', /not a readable ONNX model/],
    ['empty.onnx', /ONNX/],
    ['png-magic.onnx', /not a readable ONNX model/],
    ['random.onnx', /not a readable ONNX model/],
    ['absurd-input.onnx', /no fixed size|100000/],
    ['input-elements.onnx', /MAX_MODEL_INPUT_ELEMENTS/],
    ['absurd-weight.onnx', /declares shape \[1000000000,1000000000\]/],
    ['negative-dim.onnx', /dimension -1/],
    ['external-initializer.onnx', /external file \("\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd"\), which convscope never reads/],
    ['external-constant.onnx', /node "c_ext".*external file/],
    ['external-subgraph.onnx', /w_ext.*subgraph.*external file|external file/],
    ['unbounded-loop.onnx', /Loop without a constant trip count/],
    ['nested-subgraphs.onnx', /nested over 16 deep/],
    ['too-many-nodes.onnx', /over 100000 nodes/],
    ['dangling-reversed.onnx', /reads nowhere, which nothing produces/],
    ['big.onnx', /over the limit of 8 MB \(MAX_MODEL_MB\)/],
  ];

  test('each is refused with a clear message in registry.errors, and the good model loads', () => {
    const byFile = new Map(registry.errors.map((e) => [e.file, e.message]));
    for (const [file, pattern] of expected) {
      assert.ok(byFile.has(file), `${file} is not in errors: ${JSON.stringify(registry.errors)}`);
      assert.match(byFile.get(file)!, pattern, file);
      assert.doesNotMatch(byFile.get(file)!, /\n\s+at /, `${file}: a stack trace`);
    }
    assert.deepEqual(registry.names(), ['good']);
    assert.ok(!byFile.has('fifo.onnx'), 'a FIFO named *.onnx is skipped, never opened');
    assert.equal(registry.errors.length, expected.length, JSON.stringify(registry.errors.map((e) => e.file)));
    assert.ok(loadMs < 60_000, `loading took ${loadMs} ms`);
  });

  test('a server over that folder starts and answers', async () => {
    fs.rmSync(path.join(dir, 'fifo.onnx'));
    const server = await startTestServer({ MODELS_DIR: dir, MAX_MODEL_MB: '8' });
    try {
      const r = await gql(server.url, `{ models { nodes { name } } modelErrors { file message } }`);
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
      assert.deepEqual(r.data.models.nodes, [{ name: 'good' }]);
      assert.equal(r.data.modelErrors.length, expected.length);
      const missing = await gql(server.url, `{ model(name: "external-initializer") { name } }`);
      assert.equal(errorCode(missing), 'NOT_FOUND');
      assert.match(missing.errors![0].message, /external file/);
    } finally {
      await server.close();
    }
  });
});

test('no error response in this file carries a stack trace', () => {
  assert.ok(seen.length > 5);
  for (const r of seen) for (const e of r.errors ?? []) assert.equal(e.extensions?.stacktrace, undefined, JSON.stringify(e));
});
