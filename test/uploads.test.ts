/** The uploads folder's bound (UPLOADS_MB): least recently used uploads go first, across restarts. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from '@jest/globals';
import sharp from 'sharp';
import { ImageStore } from '../src/images/store';

const LIMITS = { maxImageBytes: 1 << 20, maxImagePixels: 1 << 20 };

async function png(seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(32 * 32 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + seed * 97) % 256;
  return sharp(raw, { raw: { width: 32, height: 32, channels: 3 } })
    .png()
    .toBuffer();
}

test('over UPLOADS_MB the least recently used uploads are deleted; use refreshes; the order survives a restart', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-uploads-'));
  const [a, b, c, d] = await Promise.all([1, 2, 3, 4].map(png));
  const bound = a.length + b.length + c.length + 10; // room for three of these (same size within a few bytes)
  const store = new ImageStore(dir, LIMITS, bound);
  const ha = (await store.put(a)).sha256;
  const hb = (await store.put(b)).sha256;
  const hc = (await store.put(c)).sha256;
  assert.ok(store.bytes <= bound);
  assert.ok(store.get(ha), 'a is used again: now the most recent');
  const hd = (await store.put(d)).sha256; // over the bound: b, the least recently used, goes
  assert.equal(store.get(hb), undefined, 'b evicted');
  assert.equal(fs.existsSync(path.join(dir, 'uploads', hb)), false, "b's file deleted");
  assert.ok(store.bytes <= bound);
  // Use them in the order c, a, d (apart in time: the recency a restart reads is the files' mtime).
  for (const h of [hc, ha, hd]) {
    assert.ok(store.get(h), `${h.slice(0, 8)} kept`);
    await new Promise((resolve) => setTimeout(resolve, 15));
  }

  // Restart with a smaller bound: the least recently used (c, then a) go.
  const smaller = new ImageStore(dir, LIMITS, d.length + 5);
  assert.equal(smaller.get(hc), undefined);
  assert.equal(smaller.get(ha), undefined);
  assert.ok(smaller.get(hd), 'the most recently used one stays');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an upload larger than the whole bound is still kept (until the next one)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-uploads-'));
  const store = new ImageStore(dir, LIMITS, 10);
  const { sha256 } = await store.put(await png(5));
  assert.ok(store.get(sha256), 'usable right after its upload');
  fs.rmSync(dir, { recursive: true, force: true });
});
