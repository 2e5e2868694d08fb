/**
 * The PNG encoder (src/images/png.ts) against an independent decoder (sharp's libspng/libpng),
 * and patches cut from an image decoded once against sharp's own extract.
 */
import { describe, expect, test } from '@jest/globals';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { encodePng } from '../src/images/png';
import { cropPixels, imagePixels, patch, patchPng, pixelsPng } from '../src/images/patches';
import { png } from '../src/images/render';
import { picture } from './pictures';

/** What sharp decodes of a PNG: its channels as stored, and the pixels. */
async function decode(bytes: Buffer): Promise<{ channels: number; width: number; height: number; data: Buffer }> {
  const { channels } = await sharp(bytes).metadata();
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  // sharp hands grey out as RGB (and grey + alpha as RGBA): keep the first channel (and the alpha).
  const from = channels === 2 ? [0, info.channels - 1] : [0];
  const pixels = channels === info.channels ? data : Buffer.from(data.filter((_, i) => from.includes(i % info.channels)));
  return { channels: channels!, width: info.width, height: info.height, data: pixels };
}

function noise(length: number, seed: number): Buffer {
  let s = seed;
  return Buffer.from(Array.from({ length }, () => (s = (s * 1103515245 + 12345) % 2147483648) >> 23));
}

describe('encodePng', () => {
  test.each([
    [1, 1, 1],
    [1, 7, 5],
    [2, 13, 9],
    [3, 64, 48],
    [4, 31, 17],
  ])('%i channels, %i×%i: sharp decodes the same pixels', async (channels, width, height) => {
    for (const pixels of [noise(width * height * channels, width), Buffer.alloc(width * height * channels, 77)]) {
      const got = await decode(await encodePng(pixels, width, height, channels));
      assert.deepEqual([got.channels, got.width, got.height], [channels, width, height]);
      assert.ok(got.data.equals(pixels));
    }
  });

  test('a picture larger than the synchronous limit (deflated on libuv threads) decodes the same', async () => {
    const pixels = picture(400, 300, 5);
    assert.ok((await decode(await encodePng(pixels, 400, 300, 3))).data.equals(pixels));
  });

  test("repeated rows are written as 'Up' rows, so an upscaled picture costs little more than its source", async () => {
    const small = noise(20 * 20 * 3, 3);
    const big = await png(small, 20, 20, 3, 8);
    const expected = await sharp(small, { raw: { width: 20, height: 20, channels: 3 } })
      .resize(160, 160, { kernel: 'nearest' })
      .raw()
      .toBuffer();
    assert.ok((await decode(big)).data.equals(expected), "equal to sharp's nearest-neighbour upscaling");
    expect(big.length).toBeLessThan(3 * (await encodePng(small, 20, 20, 3)).length);
  });

  test('pixels that do not fill the size, or a channel count PNG has not, are refused', async () => {
    await expect(encodePng(Buffer.alloc(10), 2, 2, 3)).rejects.toThrow(/no PNG of 2×2 pixels with 3 channels from 10 bytes/);
    await expect(encodePng(Buffer.alloc(20), 2, 2, 5)).rejects.toThrow(/5 channels/);
  });
});

describe('patches', () => {
  test("a patch cut from the image decoded once has sharp's extract's pixels (RGB, grey, EXIF-rotated JPEGs)", async () => {
    const rgb = picture(90, 70, 2);
    const jpegs = [
      await sharp(rgb, { raw: { width: 90, height: 70, channels: 3 } })
        .jpeg()
        .toBuffer(),
      await sharp(rgb, { raw: { width: 90, height: 70, channels: 3 } })
        .toColourspace('b-w')
        .jpeg()
        .toBuffer(),
      await sharp(rgb, { raw: { width: 90, height: 70, channels: 3 } })
        .jpeg()
        .withMetadata({ orientation: 6 })
        .toBuffer(), // shown 70×90
    ];
    for (const bytes of jpegs) {
      const image = await imagePixels(bytes);
      for (const box of [
        { x: 0, y: 0, width: 11, height: 11 },
        { x: 13, y: 29, width: 40, height: 33 },
        { x: image.width - 5, y: image.height - 7, width: 5, height: 7 },
      ]) {
        const cut = cropPixels(image, box);
        const extracted = await decode(await patch(bytes, box).png().toBuffer());
        assert.deepEqual([cut.channels, cut.width, cut.height], [extracted.channels, box.width, box.height]);
        assert.ok(cut.data.equals(extracted.data), `box ${JSON.stringify(box)}`);
        // The API's patch (one image, one box) and the atlas's (cut from the decoded image) are the same file.
        assert.ok((await patchPng(bytes, box, 1)).equals(await pixelsPng(cut, 1)));
      }
    }
  });
});
