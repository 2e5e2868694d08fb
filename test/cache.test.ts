/**
 * Caching (issue 6): the tiered store (memory, disk, Redis), its byte bounds and checksums,
 * single flight, and through the API: no inference for a result computed before — in this
 * process, after a restart (disk), or by another process (Redis) — plus APQ and cache hints.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { BlobStore } from '../src/cache/blobs';
import { DiskTier } from '../src/cache/disk';
import { decodeEntry, encodeEntry, ENTRY_HEADER, FLOATS } from '../src/cache/entry';
import { MemoryTier } from '../src/cache/memory';
import { TieredStore } from '../src/cache/store';
import { Extent, boxedResult, cut, ProjectionResult } from '../src/engine/projections';
import { loadConfig } from '../src/config';
import { projectionCodec } from '../src/inference';
import { startServer } from '../src/server';
import { projectUnit } from '../src/service/projection';
import { renderProjection } from '../src/service/views';
import { Box, projectionPixels } from '../src/images/maps';
import { signedToPixels } from '../src/images/render';
import type { Preprocessing } from '../src/model';
import { createScope } from '../src/service/scope';
import { gql, GqlResult, startTestServer } from './helpers';
import { startRedis } from './servers';
import { FIXTURE_MODELS } from './paths';

type Server = Awaited<ReturnType<typeof startTestServer>>;

/** A deterministic RGB picture, as PNG bytes. */
async function picture(size: number, seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++)
        raw[(y * size + x) * 3 + c] = Math.round(127.5 + 120 * Math.sin((x * (c + 1) + seed * 13) / 9) * Math.cos((y + c * 7 + seed) / 11));
    }
  }
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer();
}

const LAYER = '/features/features.11/Relu';
const PROJECTION = `query($layer: String!, $index: Int!, $image: ImageInput!) {
  model(name: "alexnet") { layer(name: $layer) { filter(index: $index) {
    projection(image: $image) { seedValue position { y x } imageUrl tensorUrl } } } } }`;
/** The same projection asked differently: the response cache cannot answer it, the result cache can. */
const PROJECTION_AGAIN = `query Again($layer: String!, $index: Int!, $image: ImageInput!) {
  model(name: "alexnet") { layer(name: $layer) { unit: filter(index: $index) {
    p: projection(image: $image) { seedValue imageUrl tensorUrl } activation(image: $image) { max } } featureMaps(image: $image) { tensorUrl } } } }`;

/** The URL signing key shared by replicas (REDIS_URL needs one). */
const SIGNING_KEY = 'cache-test-url-signing-key-0123456789abcdef';

const tmpdir = (tag: string) => fs.mkdtempSync(path.join(os.tmpdir(), `convscope-${tag}-`));

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}
const bytesOnDisk = (dir: string) => files(dir).reduce((n, f) => n + fs.statSync(f).size, 0);

function ok<T>(res: GqlResult<T>): T {
  assert.equal(res.errors, undefined, JSON.stringify(res.errors));
  return res.data as T;
}

async function fetchBytes(url: string): Promise<{ status: number; bytes: Buffer; headers: Headers }> {
  const res = await fetch(url);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

describe('cache tiers', () => {
  test('the memory tier keeps its byte bound, evicting the least recently used', () => {
    const tier = new MemoryTier(20_000);
    for (let i = 0; i < 50; i++) {
      tier.set(`k${i}`, Buffer.alloc(1000, i));
      if (i >= 1) assert.ok(tier.get('k0'), 'k0 is used all along, so it stays');
      assert.ok(tier.bytes <= 20_000, `${tier.bytes} bytes held`);
    }
    assert.ok(tier.get('k49') && !tier.get('k1'), 'recent kept, old evicted');
    assert.ok(tier.evictions > 0);
    tier.set('huge', Buffer.alloc(30_000));
    assert.equal(tier.get('huge'), undefined, 'an entry over the bound is not kept');
    // A slice of a larger buffer is copied, so it is accounted at its own size.
    const slab = Buffer.alloc(64 * 1024);
    tier.set('slice', slab.subarray(10, 20));
    assert.equal(tier.get('slice')!.buffer.byteLength, 10);
  });

  test('the disk tier keeps its byte bound (LRU by access), also across a reopen', async () => {
    const dir = tmpdir('disk');
    try {
      const limit = 30_000;
      const disk = new DiskTier(dir, limit);
      await disk.open();
      for (let i = 0; i < 60; i++) {
        await disk.set(`key ${i}`, Buffer.alloc(1000 + (i % 7) * 100, i));
        if (i >= 1) assert.ok(await disk.get('key 0'), 'key 0 is read all along, so it stays');
        assert.ok(bytesOnDisk(dir) <= limit, `${bytesOnDisk(dir)} bytes on disk after ${i + 1} writes`);
        assert.equal(disk.bytes, bytesOnDisk(dir));
      }
      assert.equal(await disk.get('key 1'), undefined, 'old entries were evicted');
      assert.deepEqual(await disk.get('key 59'), Buffer.alloc(1000 + (59 % 7) * 100, 59));
      // mtimes carry access order across restarts; a smaller bound evicts the least recent.
      const t0 = Date.now() / 1000;
      const again = new DiskTier(dir, limit);
      await again.open();
      assert.equal(again.entries, disk.entries);
      fs.utimesSync(disk.fileOf('key 59'), t0 + 10, t0 + 10);
      const small = new DiskTier(dir, 5000);
      await small.open();
      assert.ok(bytesOnDisk(dir) <= 5000);
      assert.ok(await small.get('key 59'), 'the most recently used survives');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a truncated, corrupted or misplaced disk entry is deleted and recomputed, never served', async () => {
    const dir = tmpdir('corrupt');
    try {
      const value = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
      let computed = 0;
      const compute = async () => {
        computed++;
        return value;
      };
      const open = () => TieredStore.open({ memoryBytes: 0, disk: { dir, bytes: 1 << 20 } });
      const first = await open();
      assert.deepEqual(await first.cached('t', FLOATS, compute), value);
      await first.cached('other', FLOATS, compute);
      assert.equal(computed, 2);
      const file = first.disk!.fileOf('t');
      const good = fs.readFileSync(file);
      const damage: [string, (b: Buffer) => Buffer][] = [
        ['truncated', (b) => b.subarray(0, b.length - 5)],
        ['cut inside the header', (b) => b.subarray(0, 10)],
        [
          'a flipped bit in the payload',
          (b) => {
            const c = Buffer.from(b);
            c[c.length - 100] ^= 0x10;
            return c;
          },
        ],
        [
          'a flipped bit in the checksum',
          (b) => {
            const c = Buffer.from(b);
            c[13] ^= 1;
            return c;
          },
        ],
        [
          'a flipped bit in the key',
          (b) => {
            const c = Buffer.from(b);
            c[ENTRY_HEADER] ^= 1;
            return c;
          },
        ],
        [
          'an entry of the earlier format (CSC1)',
          (b) => {
            const c = Buffer.from(b);
            c.write('CSC1', 0, 'latin1');
            return c;
          },
        ],
        ['empty', () => Buffer.alloc(0)],
        ['another key’s entry', () => fs.readFileSync(first.disk!.fileOf('other'))],
      ];
      for (const [what, damageOf] of damage) {
        fs.writeFileSync(file, damageOf(good));
        const store = await open();
        const computedBefore: number = computed;
        assert.equal(await store.disk!.get('t'), undefined, `${what}: not served`);
        assert.equal(fs.existsSync(file), false, `${what}: deleted`);
        assert.equal(store.disk!.corrupt, 1, what);
        assert.deepEqual(await store.cached('t', FLOATS, compute), value, `${what}: recomputed`);
        assert.equal(computed, computedBefore + 1, `${what}: computed again`);
        assert.ok(fs.readFileSync(file).equals(good), `${what}: rewritten whole`);
      }
      assert.throws(() => decodeEntry('k', Buffer.concat(encodeEntry('k', Buffer.from('x'))).subarray(0, 20)), /shorter|header says/);
      assert.deepEqual(decodeEntry('k', Buffer.concat(encodeEntry('k', Buffer.from('x')))), Buffer.from('x'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('single flight: concurrent requests for one missing key compute once', async () => {
    const dir = tmpdir('flight');
    try {
      const store = await TieredStore.open({ memoryBytes: 1 << 20, disk: { dir, bytes: 1 << 20 } });
      let computed = 0;
      const compute = async () => {
        computed++;
        await new Promise((r) => setTimeout(r, 30));
        return Float32Array.of(1, 2, 3);
      };
      const all = await Promise.all(Array.from({ length: 20 }, () => store.cached('k', FLOATS, compute)));
      assert.equal(computed, 1);
      for (const v of all) assert.deepEqual(v, Float32Array.of(1, 2, 3));
      // A failure is not cached: the next call computes.
      await assert.rejects(
        store.cached('bad', FLOATS, async () => {
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual(await store.cached('bad', FLOATS, async () => Float32Array.of(7)), Float32Array.of(7));
      await store.close(); // disk writes go on behind the answers: let them finish before the folder goes
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the projection codec', () => {
  test('keeps only the box outside of which a projection is zero, and gives back exactly the projection', () => {
    const shape = [3, 40, 30];
    const codec = projectionCodec(shape);
    const make = (box?: [number, number, number, number], channel?: number) => {
      const p = new Float32Array(3 * 40 * 30);
      if (box) {
        const [top, left, h, w] = box;
        for (let c = 0; c < 3; c++) {
          if (channel !== undefined && c !== channel) continue;
          for (let y = top; y < top + h; y++) for (let x = left; x < left + w; x++) p[(c * 40 + y) * 30 + x] = Math.sin(c * 1000 + y * 31 + x) + 0.5;
        }
      }
      const at: Extent = box ?? [0, 0, 0, 0];
      return boxedResult(cut(p, shape, at), at, shape, { map: Float32Array.of(1, 2, 3), position: { y: 1, x: 2 }, seedValue: 2.5 });
    };
    const same = (a: ProjectionResult, b: ProjectionResult, what: string) => {
      assert.deepEqual(a.projection, b.projection, what);
      assert.deepEqual([a.box, a.map, a.position, a.seedValue], [b.box, b.map, b.position, b.seedValue], what);
    };
    const cases: [string, ReturnType<typeof make>][] = [
      ['a box inside', make([5, 7, 9, 4])],
      ['touching every border', make([0, 0, 40, 30])],
      ['on one channel, at the corner', make([31, 22, 9, 8], 2)],
      ['all zero', make()],
    ];
    const whole = codec.encode(make([0, 0, 40, 30])).length;
    for (const [what, value] of cases) {
      same(codec.decode(codec.encode(value)), value, what);
    }
    assert.ok(codec.encode(cases[0][1]).length < whole / 10, 'a small box is stored small');
    // Values that are zero inside the box stay zero (not only the box's border is kept).
    const holes = make([5, 5, 10, 10]);
    holes.inside[(1 * 10 + 3) * 10 + 3] = 0;
    assert.equal(holes.projection[(1 * 40 + 8) * 30 + 8], 0);
    same(codec.decode(codec.encode(holes)), holes, 'holes');
  });

  test("a projection's picture, read from its box, is the one read from the whole projection: every crop, RGB, BGR and grey", () => {
    const shape = [3, 40, 30];
    const whole = new Float32Array(3 * 40 * 30);
    const at: Extent = [6, 4, 20, 17];
    for (let c = 0; c < 3; c++) {
      for (let y = at[0]; y < at[0] + at[2]; y++)
        for (let x = at[1]; x < at[1] + at[3]; x++) whole[(c * 40 + y) * 30 + x] = Math.sin(c * 100 + y * 7 + x) * (c + 1);
    }
    const result = boxedResult(cut(whole, shape, at), at, shape, { map: Float32Array.of(1), position: { y: 0, x: 0 }, seedValue: 1 });
    // The reference: every pixel of the crop read from the whole [C, H, W] projection.
    const reference = (p: Preprocessing, crop: Box) => {
      const C = p.channels === 'GRAY' ? 1 : 3;
      const out = new Float32Array(C * crop.width * crop.height);
      for (let c = 0; c < C; c++) {
        const source = p.channels === 'BGR' ? 2 - c : c;
        for (let y = 0; y < crop.height; y++) {
          for (let x = 0; x < crop.width; x++) out[(c * crop.height + y) * crop.width + x] = whole[(source * 40 + crop.y + y) * 30 + crop.x + x];
        }
      }
      return signedToPixels({ channels: C, height: crop.height, width: crop.width, data: out });
    };
    const crops: Box[] = [
      { x: 0, y: 0, width: 30, height: 40 },
      { x: 8, y: 10, width: 5, height: 6 },
      { x: 0, y: 0, width: 9, height: 12 },
      { x: 18, y: 22, width: 12, height: 18 },
      { x: 0, y: 30, width: 4, height: 10 },
    ];
    for (const channels of ['RGB', 'BGR', 'GRAY'] as const) {
      const p = { channels, width: 30, height: 40 } as Preprocessing;
      for (const crop of crops) {
        const { pixels, width, height } = projectionPixels(result, p, crop);
        assert.deepEqual([width, height], [crop.width, crop.height]);
        assert.ok(pixels.equals(reference(p, crop)), `${channels} ${JSON.stringify(crop)}`);
      }
      assert.ok(projectionPixels(result, p).pixels.equals(reference(p, crops[0])), `${channels}, uncropped`);
    }
  });
});

describe('results through the API are computed once', () => {
  let png: Buffer;
  beforeAll(async () => {
    png = await picture(224, 21);
  });

  test('a second identical projection query runs no inference, nor one asked differently, also after a restart', async () => {
    const dir = tmpdir('restart');
    const vars = { layer: LAYER, index: 3, image: { base64: png.toString('base64') } };
    let first: any;
    let firstImage: Buffer;
    try {
      const a = await startTestServer({ CACHE_DIR: dir });
      try {
        first = ok(await gql(a.url, PROJECTION, vars));
        firstImage = (await fetchBytes(a.url + first.model.layer.filter.projection.imageUrl)).bytes;
        const runs = a.services.engine.stats.runs;
        assert.ok(runs > 0);
        assert.deepEqual(ok(await gql(a.url, PROJECTION, vars)), first);
        assert.equal(a.services.engine.stats.runs, runs, 'identical query: no inference');
        const again = ok<any>(await gql(a.url, PROJECTION_AGAIN, vars));
        const afterAgain = a.services.engine.stats.runs;
        assert.equal(again.model.layer.unit.p.imageUrl, first.model.layer.filter.projection.imageUrl);
        assert.equal(again.model.layer.unit.p.seedValue, first.model.layer.filter.projection.seedValue);
        assert.equal(afterAgain - runs, 1, 'only the activation was new (one forward pass, shared by activation and featureMaps)');
        ok(await gql(a.url, PROJECTION_AGAIN, vars));
        assert.equal(a.services.engine.stats.runs, afterAgain, 'activation and feature maps are cached too');
      } finally {
        await a.close();
      }
      for (const responseCache of ['on', 'off']) {
        const b = await startTestServer({ CACHE_DIR: dir, RESPONSE_CACHE: responseCache });
        try {
          assert.deepEqual(ok(await gql(b.url, PROJECTION, vars)), first, `restart (response cache ${responseCache})`);
          ok(await gql(b.url, PROJECTION_AGAIN, vars));
          assert.equal(b.services.engine.stats.runs, 0, `after a restart with the same CACHE_DIR (response cache ${responseCache}): no inference`);
          assert.ok(b.services.cache.stats.disk.hits > 0);
          const p = first.model.layer.filter.projection;
          const img = await fetchBytes(b.url + p.imageUrl);
          assert.equal(img.status, 200, 'the blob is served from disk after the restart');
          assert.ok(img.bytes.equals(firstImage), 'the same bytes');
        } finally {
          await b.close();
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('corrupted disk entries are recomputed after a restart, and the answers do not change', async () => {
    const dir = tmpdir('corrupt-api');
    const vars = { layer: LAYER, index: 5, image: { base64: (await picture(224, 22)).toString('base64') } };
    try {
      const a = await startTestServer({ CACHE_DIR: dir });
      const first = ok<any>(await gql(a.url, PROJECTION, vars));
      const made = new Map<string, Buffer>();
      for (const url of [first.model.layer.filter.projection.imageUrl, first.model.layer.filter.projection.tensorUrl])
        made.set(url, (await fetchBytes(a.url + url)).bytes);
      await a.close();
      const entries = files(path.join(dir, 'store'));
      assert.ok(entries.length >= 4, `${entries.length} entries`);
      entries.forEach((f, i) => {
        const b = fs.readFileSync(f);
        if (i % 2)
          fs.writeFileSync(f, b.subarray(0, b.length >> 1)); // truncated
        else {
          b[b.length - 1] ^= 0xff; // corrupted
          fs.writeFileSync(f, b);
        }
      });
      const b = await startTestServer({ CACHE_DIR: dir });
      try {
        const again = ok<any>(await gql(b.url, PROJECTION, vars));
        assert.deepEqual(again, first);
        assert.ok(b.services.engine.stats.runs > 0, 'recomputed');
        for (const url of [again.model.layer.filter.projection.imageUrl, again.model.layer.filter.projection.tensorUrl]) {
          const blob = await fetchBytes(b.url + url);
          assert.equal(blob.status, 200, url);
          assert.ok(blob.bytes.equals(made.get(url)!), `${url}: the same bytes`);
        }
        assert.ok(b.services.cache.disk!.corrupt >= 3, `${b.services.cache.disk!.corrupt} corrupt entries detected`);
        await b.services.cache.close(); // the response cache writes after answering
        for (const f of files(path.join(dir, 'store'))) {
          const entry = fs.readFileSync(f);
          const key = entry.toString('utf8', ENTRY_HEADER, ENTRY_HEADER + entry.readUInt32LE(4));
          assert.doesNotThrow(() => decodeEntry(key, entry), `${key}: every damaged entry was deleted or rewritten`);
        }
      } finally {
        await b.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('concurrent identical requests compute once', async () => {
    const s = await startTestServer({ RESPONSE_CACHE: 'off' });
    try {
      const vars = { layer: LAYER, index: 2, image: { base64: (await picture(224, 23)).toString('base64') } };
      const results = await Promise.all(Array.from({ length: 8 }, () => gql(s.url, PROJECTION, vars)));
      for (const r of results) assert.deepEqual(ok(r), ok(results[0]));
      assert.equal(s.services.engine.stats.items, 1, 'one projection computed for eight requests');
    } finally {
      await s.close();
    }
  });

  test('eviction keeps the memory and disk bounds; a projection URL whose bytes were evicted is made again when fetched', async () => {
    const memoryLimit = 0.75 * 1024 * 1024;
    const diskLimit = 1.5 * 1024 * 1024;
    const s = await startTestServer({ CACHE_MEMORY_MB: '0.75', CACHE_DISK_MB: '1.5', RESPONSE_CACHE: 'off' });
    try {
      const store = path.join(s.cacheDir, 'store');
      const image = { base64: (await picture(224, 24)).toString('base64') };
      const vars = { layer: LAYER, index: 0, image };
      const first = ok<any>(await gql(s.url, PROJECTION, vars)).model.layer.filter.projection;
      const made = await fetchBytes(s.url + first.imageUrl);
      assert.equal(made.status, 200);
      for (let index = 1; index < 8; index++) {
        const p = ok<any>(await gql(s.url, PROJECTION, { ...vars, index })).model.layer.filter.projection;
        for (const url of [p.imageUrl, p.tensorUrl]) assert.equal((await fetchBytes(s.url + url)).status, 200);
        assert.ok(s.services.cache.memory!.bytes <= memoryLimit, `memory: ${s.services.cache.memory!.bytes} bytes`);
        assert.ok(bytesOnDisk(store) <= diskLimit, `disk: ${bytesOnDisk(store)} bytes`);
      }
      assert.ok(s.services.cache.disk!.evictions > 0 && s.services.cache.memory!.evictions > 0);
      // The first projection's PNG has been pushed out of both tiers by now (its small recipe has not).
      const hash = first.imageUrl.slice(5, 69);
      assert.equal(await s.services.cache.has(BlobStore.key('png', hash)), false, 'the bytes were evicted');
      const runs = s.services.engine.stats.runs;
      const again = await fetchBytes(s.url + first.imageUrl);
      assert.equal(again.status, 200, 'the URL still resolves');
      assert.ok(again.bytes.equals(made.bytes), 'byte for byte the same');
      assert.ok(s.services.engine.stats.runs > runs, 'the evicted projection was computed again');
    } finally {
      await s.close();
    }
  });

  test("projection URLs cost no rendering: the bytes are made on first fetch, the same as rendering the query's result", async () => {
    const s = await startTestServer();
    try {
      const source = await picture(224, 28);
      const vars = { layer: LAYER, index: 7, image: { base64: source.toString('base64') } };
      const query = `query($layer: String!, $index: Int!, $image: ImageInput!) {
        model(name: "alexnet") { layer(name: $layer) { filter(index: $index) {
          projection(image: $image) { imageUrl crop: imageUrl(crop: true) tensorUrl } } } } }`;
      const urls = ok<any>(await gql(s.url, query, vars)).model.layer.filter.projection;
      const hashes = Object.values<string>(urls).map((u) => u.slice(u.lastIndexOf('/') + 1, u.lastIndexOf('.')));
      for (const [i, kind] of ['png', 'png', 'npy'].entries()) {
        assert.equal(await s.services.cache.has(BlobStore.key(kind as 'png' | 'npy', hashes[i])), false, 'nothing rendered yet');
      }
      // What rendering at query time gives: the same projection, computed here, rendered directly.
      const model = s.services.registry.models.get('alexnet')!;
      const layer = model.layerByName.get(LAYER)!;
      const image = { sha256: createHash('sha256').update(source).digest('hex'), bytes: source };
      const p = await projectUnit(createScope(s.services), { model, layer, index: 7 }, image, {});
      const expected = [await renderProjection(p, 'png', false), await renderProjection(p, 'png', true), renderProjection(p, 'npy') as Uint8Array];
      for (const [i, url] of Object.values<string>(urls).entries()) {
        const res = await fetchBytes(s.url + url);
        assert.equal(res.status, 200, url);
        assert.ok(res.bytes.equals(Buffer.from(expected[i])), `${url}: byte-identical to rendering at query time`);
      }
      assert.equal(await s.services.cache.has(BlobStore.key('png', hashes[0])), true, 'kept once made');
      // Evicted bytes (as eviction would) are made again under the same URL, also the response cache's answer.
      await s.services.cache.delete(BlobStore.key('png', hashes[0]));
      assert.deepEqual(ok<any>(await gql(s.url, query, vars)).model.layer.filter.projection, urls);
      const again = await fetchBytes(s.url + urls.imageUrl);
      assert.ok(again.status === 200 && again.bytes.equals(Buffer.from(expected[0])));
      // A recipe under a name it was not signed for is not served (test/signed-urls.test.ts has more).
      const forged = await fetchBytes(`${s.url}/img/${'0'.repeat(64)}.png${urls.imageUrl.slice(urls.imageUrl.indexOf('?'))}`);
      assert.equal(forged.status, 403);
      assert.equal(await s.services.cache.has(BlobStore.key('png', '0'.repeat(64))), false);
    } finally {
      await s.close();
    }
  });

  test('a projection URL resolves after a restart on the same CACHE_DIR, even if it was never fetched', async () => {
    const dir = tmpdir('restart');
    const env = { MODELS_DIR: FIXTURE_MODELS, CACHE_DIR: dir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent' };
    try {
      const vars = { layer: LAYER, index: 3, image: { base64: (await picture(224, 29)).toString('base64') } };
      const a = await startServer(loadConfig(env));
      let urls: { imageUrl: string; tensorUrl: string };
      let made: Buffer;
      try {
        urls = ok<any>(await gql(a.url, PROJECTION, vars)).model.layer.filter.projection;
        made = (await fetchBytes(a.url + urls.tensorUrl)).bytes;
      } finally {
        await a.close();
      }
      const b = await startServer(loadConfig(env));
      try {
        for (const url of [urls.imageUrl, urls.tensorUrl]) assert.equal((await fetchBytes(b.url + url)).status, 200, url);
        assert.ok((await fetchBytes(b.url + urls.tensorUrl)).bytes.equals(made), 'the same bytes after the restart');
      } finally {
        await b.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('blob routes: ETag, immutable Cache-Control, 304', async () => {
    const s = await startTestServer();
    try {
      const p = ok<any>(await gql(s.url, PROJECTION, { layer: LAYER, index: 1, image: { base64: png.toString('base64') } })).model.layer.filter.projection;
      for (const url of [p.imageUrl, p.tensorUrl]) {
        const res = await fetch(s.url + url);
        assert.equal(res.status, 200);
        const etag = res.headers.get('etag')!;
        assert.equal(etag, `"${url.split('/')[2].split('.')[0]}"`);
        assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
        const again = await fetch(s.url + url, { headers: { 'if-none-match': etag } });
        assert.equal(again.status, 304);
      }
      assert.equal((await fetch(`${s.url}/img/${'0'.repeat(64)}.png`)).status, 404);
      assert.equal((await fetch(`${s.url}/img/nothex.png`)).status, 404);
    } finally {
      await s.close();
    }
  });
});

describe('Apollo: persisted queries and cache hints', () => {
  let s: Server;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.close());

  const get = (params: Record<string, unknown>, headers: Record<string, string> = { 'apollo-require-preflight': 'true' }) => {
    const qs = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
    return fetch(`${s.url}/graphql?${qs}`, { headers });
  };

  test('APQ: a GET with only the hash works after the query is registered; CSRF prevention stays on', async () => {
    const query = '{ model(name: "alexnet") { name sha256 } }';
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const extensions = { persistedQuery: { version: 1, sha256Hash } };
    const unknown = await get({ extensions });
    assert.equal(((await unknown.json()) as GqlResult).errors?.[0]?.extensions?.code, 'PERSISTED_QUERY_NOT_FOUND');
    const register = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, extensions }),
    });
    assert.equal(register.status, 200);
    const res = await get({ extensions });
    assert.equal(res.status, 200);
    const body = (await res.json()) as GqlResult;
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    assert.equal(body.data.model.name, 'alexnet');
    assert.equal(res.headers.get('cache-control'), 'max-age=3600, public');
    const noPreflight = await get({ extensions }, {});
    assert.equal(noPreflight.status, 400, 'a simple GET without apollo-require-preflight is refused (CSRF prevention)');
  });

  test('cache-control headers follow the @cacheControl hints', async () => {
    const header = async (query: string, variables: Record<string, unknown> = {}) => {
      const res = await fetch(`${s.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as GqlResult;
      assert.equal(body.errors, undefined, JSON.stringify(body.errors));
      return res.headers.get('cache-control');
    };
    assert.equal(
      await header('{ model(name: "alexnet") { name layers(first: 2) { edges { cursor node { name receptiveField { size } } } pageInfo { hasNextPage } } } }'),
      'max-age=3600, public',
    );
    assert.equal(await header('{ models(first: 2) { nodes { name } } }'), 'no-store', 'what the models folder holds');
    const image = { base64: (await picture(64, 25)).toString('base64') };
    assert.equal(
      await header(
        `query($image: ImageInput!) { model(name: "alexnet") { layer(name: "${LAYER}") { filter(index: 0) { weights { min } projection(image: $image) { position { y x } box { x } imageUrl } } featureMaps(image: $image) { channels { max } } } } }`,
        { image },
      ),
      'max-age=3600, public',
    );
    assert.equal(await header('{ modelErrors { file } }'), 'no-store');
    assert.equal(await header(`mutation($b: String!) { uploadImage(base64: $b) { id } }`, { b: image.base64 }), 'no-store');
  });

  test('the response cache answers a repeated cacheable query without resolvers (Age header)', async () => {
    const query = '{ model(name: "zfnet") { name layers(first: 3) { nodes { name outputShape } } } }';
    const first = await get({ query });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('age'), null);
    const second = await get({ query });
    assert.equal(second.status, 200);
    assert.notEqual(second.headers.get('age'), null, 'served from the response cache');
    assert.deepEqual(await second.json(), await first.json());
  });
});

// ---- Redis -------------------------------------------------------------------------------

describe('Redis tier', () => {
  test('two servers with different CACHE_DIRs share results, blobs and persisted queries through Redis', async () => {
    const redis = await startRedis();
    const servers: Server[] = [];
    try {
      const a = await startTestServer({ REDIS_URL: redis.url, URL_SIGNING_KEY: SIGNING_KEY });
      servers.push(a);
      const b = await startTestServer({ REDIS_URL: redis.url, URL_SIGNING_KEY: SIGNING_KEY, RESPONSE_CACHE: 'off' });
      servers.push(b);
      assert.notEqual(a.cacheDir, b.cacheDir);
      const vars = { layer: LAYER, index: 4, image: { base64: (await picture(224, 26)).toString('base64') } };
      const onA = ok<any>(await gql(a.url, PROJECTION_AGAIN, vars));
      assert.ok(a.services.engine.stats.runs > 0);
      const onB = ok<any>(await gql(b.url, PROJECTION_AGAIN, vars));
      assert.deepEqual(onB, onA);
      assert.equal(b.services.engine.stats.runs, 0, 'B computed nothing: A’s results came through Redis');
      assert.ok(b.services.cache.stats.redis.hits > 0);
      // A blob made by A is served by B (from Redis), and B now has it on its own disk.
      const url = onA.model.layer.unit.p.tensorUrl;
      const onAImg = await fetchBytes(a.url + url);
      const runs = b.services.engine.stats.runs;
      const img = await fetchBytes(b.url + url);
      assert.equal(img.status, 200);
      assert.ok(img.bytes.equals(onAImg.bytes));
      assert.equal(b.services.engine.stats.runs, runs, 'B made nothing');
      // A URL A handed out and nobody fetched resolves on B: made from its recipe and A's result (through Redis).
      const fresh = await fetchBytes(b.url + onA.model.layer.unit.p.imageUrl);
      assert.equal(fresh.status, 200);
      assert.equal(b.services.engine.stats.runs, runs, 'from the shared result');
      // A query registered on A (APQ) runs on B by hash alone.
      const query = '{ models { totalCount } }';
      const sha256Hash = createHash('sha256').update(query).digest('hex');
      const extensions = { persistedQuery: { version: 1, sha256Hash } };
      ok(
        (await (
          await fetch(`${a.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, extensions }) })
        ).json()) as GqlResult,
      );
      const res = await fetch(`${b.url}/graphql?extensions=${encodeURIComponent(JSON.stringify(extensions))}`, {
        headers: { 'apollo-require-preflight': 'true' },
      });
      const body = (await res.json()) as GqlResult;
      assert.equal(body.errors, undefined, JSON.stringify(body.errors));
      assert.ok(body.data.models.totalCount > 0);
      // Metrics name the tier.
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      assert.match(metrics, /convscope_cache_hits_total\{tier="redis"\} [1-9]/);
    } finally {
      for (const s of servers) await s.close();
      await redis.stop();
    }
  });

  test('a Redis that goes away makes misses, not failed requests, nor slow ones (circuit breaker); back, it is shared again', async () => {
    const redis = await startRedis();
    const servers: Server[] = [];
    let seed = 100;
    try {
      // The default REDIS_TIMEOUT_MS (1 s): without the breaker, each of a query's lookups waits for it.
      const a = await startTestServer({ REDIS_URL: redis.url, URL_SIGNING_KEY: SIGNING_KEY, RESPONSE_CACHE: 'off' });
      servers.push(a);
      const b = await startTestServer({ REDIS_URL: redis.url, URL_SIGNING_KEY: SIGNING_KEY, RESPONSE_CACHE: 'off' });
      servers.push(b);
      const vars = async () => ({ layer: LAYER, index: 6, image: { base64: (await picture(224, seed++)).toString('base64') } });
      /** The time of one uncached projection query on `s`, ms. */
      const timed = async (s: Server) => {
        const v = await vars();
        const t0 = performance.now();
        ok(await gql(s.url, PROJECTION, v));
        return performance.now() - t0;
      };
      await timed(a); // compiles the graph
      const normal = Math.min(await timed(a), await timed(a));
      const bound = Math.max(2 * normal, normal + 400);
      const redisTier = a.services.cache.redis!;
      const breakerOpen = async () => /^convscope_cache_redis_breaker_open 1$/m.test(await (await fetch(`${a.url}/metrics`)).text());
      const waitClosed = async () => {
        for (let i = 0; i < 100 && redisTier.breaker === 'open'; i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal(redisTier.breaker, 'closed', 'the background probe closes the breaker once Redis answers');
      };

      for (const [down, up] of [
        ['SIGKILL', 'restart'],
        ['SIGSTOP', 'SIGCONT'],
      ] as const) {
        await redis.signal(down);
        await timed(a); // the first failure (at most one timeout) opens the breaker
        assert.equal(redisTier.breaker, 'open', down);
        assert.ok(await breakerOpen(), 'the metric shows the open breaker');
        const skipped = redisTier.skipped;
        for (let i = 0; i < 3; i++) {
          const ms = await timed(a);
          assert.ok(ms < bound, `${down}: an uncached query took ${ms.toFixed(0)} ms with Redis down (normal ${normal.toFixed(0)} ms)`);
        }
        assert.ok(redisTier.skipped > skipped, 'Redis was not asked while the breaker was open');

        if (up === 'restart') await redis.restart();
        else await redis.signal('SIGCONT');
        await waitClosed();
        assert.equal(await breakerOpen(), false);
        // Shared again: what A computes now, B reads from Redis without computing.
        const v = await vars();
        const onA = ok<any>(await gql(a.url, PROJECTION_AGAIN, v));
        await new Promise((r) => setTimeout(r, 200)); // A writes Redis behind its answer
        await waitClosed(); // B's breaker too, if B noticed the outage
        const runs = b.services.engine.stats.runs;
        assert.deepEqual(ok<any>(await gql(b.url, PROJECTION_AGAIN, v)), onA);
        assert.equal(b.services.engine.stats.runs, runs, `${up}: B computed nothing, the result came through Redis`);
      }
      assert.ok(redisTier.trips >= 2);
      assert.match(await (await fetch(`${a.url}/metrics`)).text(), /^convscope_cache_redis_breaker_trips_total [2-9]$/m);
    } finally {
      for (const s of servers) await s.close();
      await redis.stop();
    }
  });
});
