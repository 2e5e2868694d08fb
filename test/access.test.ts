/**
 * Use from other origins and access control over real HTTP: API keys (mutations, reads, rate
 * limits, over WebSocket too), CORS headers and preflights, gzip/brotli, and PUBLIC_URL.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { createClient } from 'graphql-ws';
import sharp from 'sharp';
import WebSocket from 'ws';
import { errorCode, GqlResult, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;

const KEYS = ['key-one-3f9a1c', 'key-two-77b0e2'];
const GRID = `{ model(name: "alexnet") { layer(name: "/features/features.0/Conv") { filterGridUrl } } }`;
const UPLOAD = `mutation($b: String!) { uploadImage(base64: $b) { id } }`;
const ALLOWED = 'http://127.0.0.1:4300';

async function post(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GqlResult & { headers: Headers }> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return { ...((await res.json()) as GqlResult), status: res.status, headers: res.headers };
}

/** No error gives away a key, sent or known, or a stack. */
function assertDiscreet(r: GqlResult, sent?: string) {
  const text = JSON.stringify(r);
  for (const key of [...KEYS, sent].filter(Boolean) as string[]) assert.ok(!text.includes(key), `the answer names a key: ${text}`);
  assert.doesNotMatch(text, /stacktrace|at .*\.js:\d+/);
}

/** A raw GET with `accept-encoding`, bytes as sent (Node's fetch would decode them). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

describe('with API keys for mutations, a rate limit, CORS for one origin and a PUBLIC_URL', () => {
  let server: Server;
  let image: string;
  beforeAll(async () => {
    server = await startTestServer({
      API_KEYS: KEYS.join(','),
      API_KEY_RATE_LIMIT: '3',
      CORS_ORIGINS: `${ALLOWED}, https://dash.example.com`,
      PUBLIC_URL: 'https://example.test/convscope/',
    });
    image = (
      await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
        .png()
        .toBuffer()
    ).toString('base64');
  });
  afterAll(() => server?.close());

  test('a mutation is refused without a key and with a wrong one (401, UNAUTHENTICATED, nothing about keys), and runs with one', async () => {
    const none = await post(server.url, UPLOAD, { b: image });
    assert.equal(none.status, 401);
    assert.equal(errorCode(none), 'UNAUTHENTICATED');
    assert.match(none.errors![0].message, /X-API-Key/);
    assertDiscreet(none);
    const wrong = await post(server.url, UPLOAD, { b: image }, { 'x-api-key': 'key-one-3f9a1d' });
    assert.equal(wrong.status, 401);
    assert.equal(errorCode(wrong), 'UNAUTHENTICATED');
    assertDiscreet(wrong, 'key-one-3f9a1d');
    const prefix = await post(server.url, UPLOAD, { b: image }, { 'x-api-key': KEYS[0].slice(0, 6) });
    assert.equal(prefix.status, 401);
    const ok = await post(server.url, UPLOAD, { b: image }, { 'x-api-key': KEYS[0] });
    assert.equal(ok.status, 200, JSON.stringify(ok.errors));
    assert.match(ok.data.uploadImage.id, /\S/);
  });

  test('reads need no key; URL fields start with PUBLIC_URL, and the path behind it serves the PNG', async () => {
    const r = await post(server.url, GRID);
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const url: string = r.data.model.layer.filterGridUrl;
    assert.match(url, /^https:\/\/example\.test\/convscope\/img\/[0-9a-f]{64}\.png$/);
    const res = await fetch(`${server.url}${url.slice('https://example.test/convscope'.length)}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
  });

  test('each key has its own rate: over it, 429 OVERLOADED with Retry-After; other keys go on', async () => {
    const headers = { 'x-api-key': KEYS[1] };
    for (let i = 0; i < 3; i++) assert.equal((await post(server.url, GRID, {}, headers)).status, 200, `request ${i + 1} of 3`);
    const over = await post(server.url, GRID, {}, headers);
    assert.equal(over.status, 429);
    assert.equal(errorCode(over), 'OVERLOADED');
    assert.ok(Number(over.errors![0].extensions!.retryAfterMs) > 0);
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    assertDiscreet(over);
    assert.equal((await post(server.url, GRID, {}, { 'x-api-key': KEYS[0] })).status, 200, 'the other key is within its rate');
  });

  test('over WebSocket: a mutation needs the key in the connection parameters; a wrong key is refused', async () => {
    const run = (params: Record<string, string>) =>
      new Promise<{ errors?: readonly { extensions?: Record<string, unknown> }[]; data?: unknown; closed?: number }>((resolve) => {
        const client = createClient({
          url: `${server.url.replace('http', 'ws')}/graphql`,
          webSocketImpl: WebSocket,
          retryAttempts: 0,
          connectionParams: params,
        });
        let result = {};
        client.subscribe(
          { query: UPLOAD, variables: { b: image } },
          {
            next: (r) => (result = r),
            error: (e) => {
              void client.dispose();
              resolve(Array.isArray(e) ? { errors: e } : { closed: (e as { code?: number }).code });
            },
            complete: () => {
              void client.dispose();
              resolve(result);
            },
          },
        );
      });
    const none = await run({});
    assert.equal(none.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(none));
    assert.equal((await run({ 'x-api-key': 'nope' })).closed, 4403);
    const ok = await run({ 'x-api-key': KEYS[0] });
    assert.equal(ok.errors, undefined, JSON.stringify(ok));
  });

  test('CORS: an allowed origin gets Access-Control-Allow-Origin on /graphql, /img and preflights; another gets none, and its preflight 403', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/graphql`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-api-key' },
      });
    const yes = await preflight(ALLOWED);
    assert.equal(yes.status, 204);
    assert.equal(yes.headers.get('access-control-allow-origin'), ALLOWED);
    assert.match(yes.headers.get('access-control-allow-headers') ?? '', /X-API-Key/i);
    const no = await preflight('http://127.0.0.1:4301');
    assert.equal(no.status, 403);
    assert.equal(no.headers.get('access-control-allow-origin'), null);

    const r = await post(server.url, GRID, {}, { origin: ALLOWED });
    assert.equal(r.headers.get('access-control-allow-origin'), ALLOWED);
    assert.match(r.headers.get('vary') ?? '', /Origin/i);
    const path = new URL(r.data.model.layer.filterGridUrl).pathname.replace('/convscope', '');
    const img = await fetch(`${server.url}${path}`, { headers: { origin: ALLOWED } });
    assert.equal(img.headers.get('access-control-allow-origin'), ALLOWED);
    const other = await fetch(`${server.url}${path}`, { headers: { origin: 'https://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  test('a WebSocket from another origin is refused; from an allowed one it opens', async () => {
    const open = (origin: string) =>
      new Promise<boolean>((resolve) => {
        const ws = new WebSocket(`${server.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', { origin });
        ws.once('open', () => {
          ws.close();
          resolve(true);
        });
        ws.once('error', () => resolve(false));
      });
    assert.equal(await open('https://evil.example'), false);
    assert.equal(await open(ALLOWED), true);
  });
});

describe('with keys for reads too, and the default CORS', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer({ API_KEYS: KEYS[0], API_KEYS_FOR_READS: '1' });
  });
  afterAll(() => server?.close());

  test('a query without a key is refused (401), with one it runs; any origin may call', async () => {
    const none = await post(server.url, GRID);
    assert.equal(none.status, 401);
    assert.equal(errorCode(none), 'UNAUTHENTICATED');
    assertDiscreet(none);
    const ok = await post(server.url, GRID, {}, { 'x-api-key': KEYS[0], origin: 'http://anywhere.example' });
    assert.equal(ok.status, 200, JSON.stringify(ok.errors));
    assert.match(ok.data.model.layer.filterGridUrl, /^\/img\/[0-9a-f]{64}\.png$/, 'no PUBLIC_URL: a path');
    assert.equal(ok.headers.get('access-control-allow-origin'), '*');
  });

  test('JSON answers and bundled pages are compressed (brotli, gzip) for clients that accept it; PNGs are not', async () => {
    const body = JSON.stringify({ query: '{ __schema { types { name description } } }' });
    const postRaw = (encoding: string) =>
      new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const req = http.request(
          `${server.url}/graphql`,
          { method: 'POST', headers: { 'content-type': 'application/json', 'accept-encoding': encoding, 'x-api-key': KEYS[0] } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const plain = await postRaw('identity');
    assert.equal(plain.headers['content-encoding'], undefined);
    const br = await postRaw('br, gzip');
    assert.equal(br.headers['content-encoding'], 'br');
    assert.deepEqual(zlib.brotliDecompressSync(br.body), plain.body);
    assert.ok(br.body.length < plain.body.length / 2, `${br.body.length} of ${plain.body.length} bytes`);
    const gz = await postRaw('gzip');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.deepEqual(zlib.gunzipSync(gz.body), plain.body);

    const page = await rawGet(`${server.url}/graphql`, { accept: 'text/html' }); // a shell under 1 kB: sent as it is
    const js = page.body.toString().match(/<script type="module" src="([^"]+\.js)"/)?.[1];
    assert.ok(js, 'the GraphiQL page names its script');
    const bundle = await rawGet(`${server.url}${js}`, { 'accept-encoding': 'br' });
    assert.equal(bundle.headers['content-encoding'], 'br');
    assert.ok(bundle.body.length < zlib.brotliDecompressSync(bundle.body).length / 2);

    const grid = await post(server.url, GRID, {}, { 'x-api-key': KEYS[0] });
    const png = await rawGet(`${server.url}${grid.data.model.layer.filterGridUrl}`, { 'accept-encoding': 'gzip, br' });
    assert.equal(png.status, 200);
    assert.equal(png.headers['content-encoding'], undefined, 'PNGs are compressed already');
  });
});
