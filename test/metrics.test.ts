/** GET /metrics: Prometheus text with the cache's tiers and the engine's batches, runs and waits. */
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { gql, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;

/** `name{labels} value` lines of a scrape, as a map. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('/metrics', () => {
  let s: Server;
  const scrape = async () => {
    const res = await fetch(`${s.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    return parse(await res.text());
  };
  beforeAll(async () => {
    s = await startTestServer({ RESPONSE_CACHE: 'off' });
  });
  afterAll(() => s.close());

  test('cache hits and misses per tier, bytes per tier, engine batch sizes, run times and queue waits', async () => {
    const raw = Buffer.alloc(64 * 64 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 37) % 251;
    const image = {
      base64: (
        await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } })
          .png()
          .toBuffer()
      ).toString('base64'),
    };
    const query = `query($image: ImageInput!, $i: Int!) { model(name: "alexnet") { layer(name: "/features/features.11/Relu") {
      filter(index: $i) { projection(image: $image) { seedValue imageUrl } } } } }`;
    const empty = await scrape();
    assert.equal(empty.get('convscope_engine_runs_total'), 0);
    assert.equal(empty.get('convscope_engine_batch_size_count'), 0);
    assert.ok(empty.get('process_resident_memory_bytes')! > 0, 'process metrics');
    // Three units of one layer in one request: one batched run of three items.
    const three = `query($image: ImageInput!) { model(name: "alexnet") { layer(name: "/features/features.11/Relu") {
      a: filter(index: 0) { projection(image: $image) { seedValue } } b: filter(index: 1) { projection(image: $image) { seedValue } }
      c: filter(index: 2) { projection(image: $image) { seedValue } } } } }`;
    assert.equal((await gql(s.url, three, { image })).errors, undefined);
    const m1 = await scrape();
    assert.equal(m1.get('convscope_engine_runs_total'), 1);
    assert.equal(m1.get('convscope_engine_items_total'), 3);
    assert.equal(m1.get('convscope_engine_batch_size_count'), 1);
    assert.equal(m1.get('convscope_engine_batch_size_sum'), 3);
    assert.equal(m1.get('convscope_engine_batch_size_bucket{le="2"}'), 0);
    assert.equal(m1.get('convscope_engine_batch_size_bucket{le="4"}'), 1);
    assert.equal(m1.get('convscope_engine_run_seconds_count'), 1);
    assert.ok(m1.get('convscope_engine_run_seconds_sum')! > 0);
    assert.equal(m1.get('convscope_engine_queue_wait_seconds_count'), 3, 'one wait per item');
    assert.equal(m1.get('convscope_cache_computations_total'), 3);
    assert.ok(m1.get('convscope_cache_misses_total{tier="memory"}')! >= 3);
    assert.ok(m1.get('convscope_cache_misses_total{tier="disk"}')! >= 3);
    assert.ok(m1.get('convscope_cache_bytes{tier="memory"}')! > 0);
    assert.ok(m1.get('convscope_cache_bytes{tier="disk"}')! > 0);
    assert.equal(m1.get('convscope_cache_limit_bytes{tier="memory"}'), 256 * 1024 * 1024);
    assert.equal(m1.get('convscope_cache_limit_bytes{tier="disk"}'), 2048 * 1024 * 1024);
    assert.ok(m1.get('convscope_cache_entries{tier="disk"}')! >= 3);
    assert.equal(m1.has('convscope_cache_hits_total{tier="redis"}'), false, 'no Redis tier without REDIS_URL');

    assert.equal((await gql(s.url, query, { image, i: 1 })).errors, undefined);
    const m2 = await scrape();
    assert.equal(m2.get('convscope_engine_runs_total'), 1, 'the cached projection ran nothing');
    assert.ok(m2.get('convscope_cache_hits_total{tier="memory"}')! > m1.get('convscope_cache_hits_total{tier="memory"}')!);
  });

  test('is not cached by HTTP caches', async () => {
    const res = await fetch(`${s.url}/metrics`);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });
});
