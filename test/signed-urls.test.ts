/**
 * Projection URLs are capabilities: /img and /tensors make bytes from a recipe only when the URL
 * carries the server's signature of it (URL_SIGNING_KEY), so a recipe written or altered by a
 * caller computes nothing; a handed-out URL renders after eviction and on another server with
 * the same key; and making bytes is admitted like a /graphql request (MAX_INFLIGHT_REQUESTS).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { BlobStore } from '../src/cache/blobs';
import { loadConfig } from '../src/config';
import { startServer } from '../src/server';
import { FIXTURE_MODELS, gql, GqlResult, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;

const KEY = 'a-test-signing-key-shared-by-both-servers-0123456789';
const QUERY = `query($image: ImageInput!, $index: Int!) { model(name: "zfnet") { layer(name: "/conv2/Conv") { filter(index: $index) {
  projection(image: $image) { imageUrl crop: imageUrl(crop: true) tensorUrl } } } } }`;

/** A MODELS_DIR holding only zfnet (fast to load). */
function zfnetOnly(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-zf-'));
  for (const f of ['zfnet.onnx', 'zfnet.json']) fs.copyFileSync(path.join(FIXTURE_MODELS, f), path.join(dir, f));
  return dir;
}

async function picture(seed: number): Promise<string> {
  const raw = Buffer.alloc(112 * 112 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * (seed + 7) + ((i / 336) | 0) * seed) % 251;
  return (
    await sharp(raw, { raw: { width: 112, height: 112, channels: 3 } })
      .png()
      .toBuffer()
  ).toString('base64');
}

function ok<T>(res: GqlResult<T>): T {
  assert.equal(res.errors, undefined, JSON.stringify(res.errors));
  return res.data as T;
}

type Urls = { imageUrl: string; crop: string; tensorUrl: string };
/** The URLs of a projection, on an image given as base64 or (an object) as an ImageInput. */
async function urlsOf(s: { url: string }, image: string | { id: string }, index: number): Promise<Urls> {
  const input = typeof image === 'string' ? { base64: image } : image;
  return ok<any>(await gql(s.url, QUERY, { image: input, index })).model.layer.filter.projection;
}

async function get(url: string) {
  const res = await fetch(url);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

const parts = (url: string) => {
  const u = new URL(url, 'http://x');
  return {
    path: u.pathname,
    hash: u.pathname.slice(u.pathname.lastIndexOf('/') + 1, u.pathname.lastIndexOf('.')),
    r: u.searchParams.get('r')!,
    s: u.searchParams.get('s')!,
  };
};
const recipeOf = (url: string) => JSON.parse(Buffer.from(parts(url).r, 'base64url').toString());
const encode = (recipe: unknown) => Buffer.from(JSON.stringify(recipe)).toString('base64url');

describe('signed projection URLs', () => {
  let modelsDir: string;
  let server: Server;
  let image: string;
  beforeAll(async () => {
    modelsDir = zfnetOnly();
    server = await startTestServer({ MODELS_DIR: modelsDir, URL_SIGNING_KEY: KEY, RESPONSE_CACHE: 'off' });
    image = await picture(3);
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(modelsDir, { recursive: true, force: true });
  });

  test('a recipe written or altered by a caller is refused (403) and computes nothing', async () => {
    const urls = await urlsOf(server, image, 0);
    for (const url of Object.values(urls)) assert.match(url, /\?r=[\w-]+&s=[\w-]{22}$/, 'recipe and signature ride along');
    const { path: p, hash, r, s } = parts(urls.imageUrl);
    const other = parts(urls.tensorUrl);
    const altered = encode({ ...recipeOf(urls.imageUrl), channel: 5 }); // another unit: a projection nobody asked for
    const forged: Record<string, string> = {
      'another unit, the old signature': `${p}?r=${altered}&s=${s}`,
      'no signature': `${p}?r=${altered}`,
      'an empty signature': `${p}?r=${r}&s=`,
      'a signature of a bit off': `${p}?r=${r}&s=${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`,
      'the signature of another name': `/img/${other.hash}.png?r=${r}&s=${s}`,
      "the tensor's signature on the picture's name": `${p}?r=${other.r}&s=${other.s}`,
      'a recipe of a name nobody handed out': `/img/${'0'.repeat(64)}.png?r=${r}&s=${s}`,
      'a recipe that is not JSON': `${p}?r=bm90IGpzb24&s=${s}`,
      'two recipes': `${p}?r=${r}&r=${altered}&s=${s}`,
    };
    const runs = server.services.engine.stats.runs;
    const compiled = server.services.engine.stats.compiled;
    for (const [what, url] of Object.entries(forged)) {
      const res = await get(server.url + url);
      assert.equal(res.status, 403, `${what}: ${res.status} ${res.bytes.toString()}`);
      assert.match(res.bytes.toString(), /signature|not JSON/, what);
    }
    assert.equal(server.services.engine.stats.runs, runs, 'no inference ran for a forged recipe');
    assert.equal(server.services.engine.stats.compiled, compiled, 'no graph was compiled');
    assert.equal(await server.services.cache.has(BlobStore.key('png', hash)), false, 'nothing was made');
    // The URL as handed out renders.
    const made = await get(server.url + urls.imageUrl);
    assert.equal(made.status, 200);
    assert.equal((await sharp(made.bytes).metadata()).format, 'png');
  });

  test('a handed-out URL renders after eviction, and on a second server with the same key (not on one with another)', async () => {
    // A dataset's image: every server has it (an upload is kept by the server it was sent to).
    const { id } = ok<any>(await gql(server.url, '{ dataset(name: "fashion-mnist-demo") { images(first: 1) { nodes { id } } } }')).dataset.images.nodes[0];
    const urls = await urlsOf(server, { id }, 2);
    const first = await Promise.all(Object.values(urls).map((u) => get(server.url + u)));
    for (const res of first) assert.equal(res.status, 200);
    for (const [i, url] of Object.values(urls).entries()) {
      const { hash } = parts(url);
      await server.services.cache.delete(BlobStore.key(i === 2 ? 'npy' : 'png', hash)); // as eviction would
      const again = await get(server.url + url);
      assert.equal(again.status, 200, url);
      assert.ok(again.bytes.equals(first[i].bytes), 'made again, byte for byte the same');
    }
    // Another server, its own cache (nothing shared): made from the recipe alone.
    const twin = await startTestServer({ MODELS_DIR: modelsDir, URL_SIGNING_KEY: KEY });
    const stranger = await startTestServer({ MODELS_DIR: modelsDir, URL_SIGNING_KEY: `${KEY}-but-another` });
    try {
      for (const [i, url] of Object.values(urls).entries()) {
        const res = await get(twin.url + url);
        assert.equal(res.status, 200, url);
        assert.ok(res.bytes.equals(first[i].bytes), 'the same bytes on the second server');
      }
      assert.ok(twin.services.engine.stats.runs > 0, 'the second server computed them');
      const refused = await get(stranger.url + urls.imageUrl);
      assert.equal(refused.status, 403);
      assert.equal(stranger.services.engine.stats.runs, 0);
    } finally {
      await twin.close();
      await stranger.close();
    }
  });

  test('without URL_SIGNING_KEY the key is kept in CACHE_DIR: URLs outlive a restart', async () => {
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-key-'));
    try {
      const env = { MODELS_DIR: modelsDir, CACHE_DIR: cacheDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent' };
      const a = await startServer(loadConfig(env));
      let urls: Urls;
      try {
        urls = await urlsOf(a, image, 4);
      } finally {
        await a.close();
      }
      const file = path.join(cacheDir, 'url-signing.key');
      assert.equal(fs.statSync(file).mode & 0o077, 0, 'readable by its owner only');
      fs.rmSync(path.join(cacheDir, 'store'), { recursive: true, force: true }); // nothing kept but the key
      const b = await startServer(loadConfig(env));
      try {
        assert.equal((await get(b.url + urls.crop)).status, 200, 'the URL renders after the restart');
        assert.ok(b.services.engine.stats.runs > 0);
      } finally {
        await b.close();
      }
      assert.throws(() => loadConfig({ ...env, URL_SIGNING_KEY: 'short' }), /at least 32/);
    } finally {
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  test('making bytes from a recipe is admitted like a request: over MAX_INFLIGHT_REQUESTS, 503 OVERLOADED with Retry-After', async () => {
    const busy = await startTestServer({
      MODELS_DIR: modelsDir,
      URL_SIGNING_KEY: KEY,
      MAX_INFLIGHT_REQUESTS: '1',
      BATCH_WINDOW_MS: '600',
      BATCH_IDLE_START: 'false',
    });
    try {
      const img = await picture(9);
      const urls = await urlsOf(busy, img, 1);
      const kept = await get(busy.url + urls.crop); // kept from now on
      assert.equal(kept.status, 200);
      // One request in flight, waiting in the batch window: the server is full.
      const slow = gql(busy.url, QUERY, { image: { base64: await picture(10) }, index: 3 });
      const end = Date.now() + 5000;
      while (busy.services.engine.queued === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      assert.ok(busy.services.engine.queued > 0, 'a request is in flight');
      const refused = await get(busy.url + urls.imageUrl);
      assert.equal(refused.status, 503);
      assert.match(refused.bytes.toString(), /OVERLOADED/);
      assert.match(refused.bytes.toString(), /MAX_INFLIGHT_REQUESTS/);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      assert.ok((await get(busy.url + urls.crop)).bytes.equals(kept.bytes), 'kept bytes are served while full (nothing to make)');
      ok(await slow);
      assert.equal((await get(busy.url + urls.imageUrl)).status, 200, 'with room again, it is made');
    } finally {
      await busy.close();
    }
  });
});
