/**
 * Decoding in worker threads (DECODE_THREADS, src/images/decode-pool.ts): the same pixel bytes as
 * on the main thread for every kind of image, the image bytes moved rather than copied, a failed
 * decode failing only that image, and an index built with a pool equal to one built without.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { loadConfig } from '../src/config';
import { DecodePool } from '../src/images/decode-pool';
import { ImageError, modelPixels } from '../src/images/preprocess';
import type { Preprocessing } from '../src/model';
import { makeDataset, startTestServer } from './helpers';
import { IMAGE_LIMITS, picture, PLAIN_RGB } from './pictures';

const LIMITS = IMAGE_LIMITS;
const rgb = PLAIN_RGB;
const grey: Preprocessing = { ...rgb, channels: 'GRAY', mean: [0], std: [1] };
const cropped: Preprocessing = { ...rgb, resize: 'center-crop', shorterSide: 256, colorProfile: 'convert-to-srgb' };

const raw = (width: number, height: number, seed = 1) => sharp(picture(width, height, seed), { raw: { width, height, channels: 3 } });

describe('the decoding pool', () => {
  let pool: DecodePool;
  beforeAll(() => {
    pool = DecodePool.open(2, LIMITS)!;
  });
  afterAll(async () => pool.close());

  test('gives the bytes decoding on the main thread gives: JPEG, PNG, CMYK, ICC profile, EXIF rotation, grey, centre crop', async () => {
    const cases: [string, Buffer, Preprocessing][] = [
      ['JPEG 256×256, scaled in the decoder', await raw(256, 256).jpeg().toBuffer(), rgb],
      ['JPEG 300×200, by sharp', await raw(300, 200, 2).jpeg().toBuffer(), rgb],
      ['PNG', await raw(160, 120, 3).png().toBuffer(), rgb],
      ['CMYK JPEG', await raw(256, 256, 4).toColourspace('cmyk').jpeg().toBuffer(), rgb],
      ['JPEG with a P3 profile, converted', await raw(256, 256, 5).withIccProfile('p3').jpeg().toBuffer(), cropped],
      ['JPEG rotated by EXIF', await raw(200, 300, 6).jpeg().withMetadata({ orientation: 6 }).toBuffer(), rgb],
      ['JPEG, grey model', await raw(256, 256, 7).jpeg().toBuffer(), grey],
    ];
    const before = pool.decoded;
    for (const [what, bytes, p] of cases) {
      const expected = await modelPixels(bytes, p, LIMITS);
      const moved = Buffer.from(bytes); // a Buffer of its own: moved to the worker, not copied
      const got = await pool.modelPixels(moved, p);
      assert.equal(moved.byteLength, 0, `${what}: the bytes were moved to the worker`);
      assert.equal(got.length, p.width * p.height * (p.channels === 'GRAY' ? 1 : 3), what);
      assert.ok(got.equals(expected), `${what}: the same bytes as on the main thread`);
    }
    assert.equal(pool.decoded - before, cases.length, 'every image went through the pool');
  });

  test('a damaged image fails with the main thread’s ImageError, and the pool keeps decoding', async () => {
    const damaged = (await raw(256, 256).jpeg().toBuffer()).subarray(0, 300);
    const onMain = await modelPixels(damaged, rgb, LIMITS).then(
      () => assert.fail('decoded'),
      (e: Error) => e,
    );
    await assert.rejects(pool.modelPixels(Buffer.from(damaged), rgb), (e: Error) => e instanceof ImageError && e.message === onMain.message);
    await assert.rejects(pool.modelPixels(Buffer.from('not a picture'), rgb), ImageError);
    const png = await raw(32, 32).png().toBuffer();
    assert.ok((await pool.modelPixels(Buffer.from(png), rgb)).equals(await modelPixels(png, rgb, LIMITS)));
  });

  test('is sized by DECODE_THREADS, by default from the cores the runtime and the main thread leave', () => {
    assert.equal(loadConfig({ DECODE_THREADS: '3' }).decodeThreads, 3);
    assert.equal(loadConfig({ ORT_THREADS: '1' }).decodeThreads, Math.max(0, os.availableParallelism() - 2));
    assert.throws(() => loadConfig({ DECODE_THREADS: '-1' }), /DECODE_THREADS/);
    assert.equal(DecodePool.open(0, LIMITS), undefined, '0: decoded on the main thread');
  });
});

describe('index jobs with a decoding pool', () => {
  let dir: string;
  const layers = ['/features/features.1/Relu', '/features/features.11/Relu'];
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-decode-pool-'));
    const dataset = path.join(dir, 'mixed');
    await makeDataset(dataset, 8, 160, 120);
    for (let i = 0; i < 4; i++)
      fs.writeFileSync(
        path.join(dataset, `photo-${i}.jpg`),
        await raw(256, 256, 10 + i)
          .jpeg()
          .toBuffer(),
      );
    fs.writeFileSync(path.join(dataset, 'photo-9.jpg'), (await raw(256, 256).jpeg().toBuffer()).subarray(0, 300)); // damaged
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The index of the dataset, built by a server with `threads` decoding threads, and how many images its pool decoded. */
  async function build(threads: number) {
    const server = await startTestServer({ DATASETS_DIR: dir, MAX_BATCH: '4', DECODE_THREADS: String(threads) });
    try {
      const { registry, datasets, jobs, inference } = server.services;
      assert.equal(inference.decodePool?.threads, threads || undefined);
      const job = await jobs.start(registry.models.get('alexnet')!, datasets.datasets.get('mixed')!, layers, 3);
      const done = (await jobs.wait(job.id))!;
      return {
        state: done.state,
        failed: done.failedImages.map((f) => f.name),
        rows: await jobs.store.tops(job.id),
        decoded: inference.decodePool?.decoded ?? 0,
      };
    } finally {
      await server.close();
    }
  }

  test('builds the index the main thread builds, row for row, the damaged image failing alone', async () => {
    const onMain = await build(0);
    const pooled = await build(2);
    assert.equal(onMain.state, 'DONE');
    assert.deepEqual(onMain.failed, ['photo-9.jpg']);
    assert.ok(onMain.rows.length > 0);
    assert.equal(onMain.decoded, 0);
    assert.equal(pooled.decoded, 13, 'every image was decoded in the pool');
    assert.deepEqual({ ...pooled, decoded: 0 }, onMain);
  }, 120_000);
});
