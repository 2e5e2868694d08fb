/**
 * JPEGs scaled while they are decoded (src/images/jpeg.ts) against sharp's pipeline: the same
 * pixels at the input size, close ones when scaled, and every case it must leave to sharp.
 */
import assert from 'node:assert/strict';
import { describe, test } from '@jest/globals';
import sharp from 'sharp';
import { toApiError } from '../src/errors';
import { decodeJpegAtSize, jpegFrame } from '../src/images/jpeg';
import { modelPixels, sharpPixels } from '../src/images/preprocess';
import type { Preprocessing } from '../src/model';
import { IMAGE_LIMITS, picture, PLAIN_RGB } from './pictures';

const LIMITS = IMAGE_LIMITS;
const MAX_PIXELS = LIMITS.maxImagePixels;
const rgbModel = PLAIN_RGB;
const greyModel: Preprocessing = { ...rgbModel, channels: 'GRAY', mean: [0], std: [1] };

const jpeg = (width: number, height: number, options: sharp.JpegOptions = {}, seed = 1) =>
  sharp(picture(width, height, seed), { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90, ...options })
    .toBuffer();

function meanAbsDiff(a: Buffer, b: Buffer): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

/** A JPEG with an EXIF block (little- or big-endian) whose IFD0 holds the orientation; `truncated`: an IFD that claims more entries than it has, none of them the orientation. */
function withExif(jpeg: Buffer, orientation: number, little: boolean, truncated = false): Buffer {
  const tiff = Buffer.alloc(26);
  const u16 = (v: number, at: number) => (little ? tiff.writeUInt16LE(v, at) : tiff.writeUInt16BE(v, at));
  tiff.write(little ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  if (little) tiff.writeUInt32LE(8, 4);
  else tiff.writeUInt32BE(8, 4);
  u16(truncated ? 5 : 1, 8); // entries
  u16(truncated ? 0x010f : 0x0112, 10); // tag: Make, or Orientation
  u16(3, 12); // SHORT
  if (little) tiff.writeUInt32LE(1, 14);
  else tiff.writeUInt32BE(1, 14);
  u16(orientation, 18);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(2 + 6 + tiff.length);
  return Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xe1]), length, Buffer.from('Exif\0\0', 'latin1'), tiff, jpeg.subarray(2)]);
}

/** The JPEG with its first `from` marker (a start of frame) renamed `to`. */
function withMarker(jpeg: Buffer, from: number, to: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 1 < out.length; i++) {
    if (out[i] === 0xff && out[i + 1] === from) {
      out[i + 1] = to;
      return out;
    }
  }
  throw new Error('no such marker');
}

describe('JPEGs scaled while decoded', () => {
  test("at the input size, the decoder gives exactly sharp's pixels (baseline, progressive, 4:4:4, grey)", async () => {
    const grey = await sharp(picture(224, 224), { raw: { width: 224, height: 224, channels: 3 } })
      .toColourspace('b-w')
      .jpeg()
      .toBuffer();
    const cases: [string, Buffer, Preprocessing][] = [
      ['baseline 4:2:0', await jpeg(224, 224), rgbModel],
      ['progressive', await jpeg(224, 224, { progressive: true }), rgbModel],
      ['4:4:4', await jpeg(224, 224, { chromaSubsampling: '4:4:4' }), rgbModel],
      ['grey JPEG, RGB model', grey, rgbModel],
      ['grey JPEG, grey model', grey, greyModel],
    ];
    for (const [what, bytes, p] of cases) {
      const scaled = decodeJpegAtSize(bytes, 224, 224, p.channels === 'GRAY', MAX_PIXELS);
      assert.ok(scaled, `${what}: decoded in the decoder`);
      assert.ok(scaled.equals(await sharpPixels(bytes, p, LIMITS)), `${what}: the same bytes as sharp`);
      assert.ok((await modelPixels(bytes, p, LIMITS)).equals(scaled), `${what}: modelPixels takes this path`);
    }
  });

  test("scaled by 7/8 and 4/8, within 1.5 grey levels on average of sharp's Lanczos resize", async () => {
    for (const size of [256, 448]) {
      const bytes = await jpeg(size, size, {}, size);
      const scaled = decodeJpegAtSize(bytes, 224, 224, false, MAX_PIXELS);
      assert.ok(scaled, `${size}: decoded in the decoder`);
      const diff = meanAbsDiff(scaled, await sharpPixels(bytes, rgbModel, LIMITS));
      assert.ok(diff <= 1.5, `${size}×${size} → 224: mean |Δ| ${diff.toFixed(2)} levels`);
      assert.ok(diff > 0, `${size}: a different resampling, not the same call`);
    }
    // Not square: 256×320 → 224×280.
    const wide = await jpeg(320, 256);
    const p = { ...rgbModel, width: 280 };
    const scaled = decodeJpegAtSize(wide, 280, 224, false, MAX_PIXELS)!;
    assert.ok(meanAbsDiff(scaled, await sharpPixels(wide, p, LIMITS)) <= 1.5);
  });

  test('leaves to sharp what it does not do: EXIF rotation, ICC profiles to convert by, CMYK, other factors, grey from colour, other formats', async () => {
    const base = sharp(picture(256, 256), { raw: { width: 256, height: 256, channels: 3 } });
    const cases: [string, Buffer, number, boolean][] = [
      ['EXIF orientation 6', await base.clone().jpeg().withMetadata({ orientation: 6 }).toBuffer(), 224, false],
      ['an ICC profile', await base.clone().jpeg().withIccProfile('p3').toBuffer(), 224, false],
      ['CMYK', await base.clone().toColourspace('cmyk').jpeg().toBuffer(), 224, false],
      ['300 → 224 (no n/8 factor)', await jpeg(300, 300), 224, false],
      ['256 → 200 (no n/8 factor)', await jpeg(256, 256), 200, false],
      ['colour JPEG, grey model', await jpeg(256, 256), 224, true],
      ['PNG', await base.clone().png().toBuffer(), 224, false],
      ['over the pixel limit', await jpeg(448, 448), 224, false],
      ['112 → 224 (enlarging: 16/8)', await jpeg(112, 112), 224, false],
      ['arithmetic coding', await jpeg(256, 256).then((b) => withMarker(b, 0xc0, 0xc9)), 224, false],
    ];
    for (const [what, bytes, size, grey] of cases) {
      const limit = what === 'over the pixel limit' ? 448 * 448 - 1 : MAX_PIXELS;
      assert.equal(decodeJpegAtSize(bytes, size, size, grey, limit), undefined, what);
    }
    // And modelPixels gives sharp's pixels for them, rotation included.
    const rotated = cases[0][1];
    assert.ok((await modelPixels(rotated, rgbModel, LIMITS)).equals(await sharpPixels(rotated, rgbModel, LIMITS)));
    const srgb = await base.clone().jpeg().withMetadata({ orientation: 1 }).withIccProfile('srgb').toBuffer();
    assert.equal(jpegFrame(srgb)?.icc, true, 'sRGB profiles are seen too');
    assert.equal(decodeJpegAtSize(srgb, 224, 224, false, MAX_PIXELS), undefined, 'sharp converts by them');
  });

  test('a JPEG with an ICC profile, for a model that ignores profiles, is decoded here to the stored values, exactly as sharp told to ignore it', async () => {
    const p3 = await sharp(picture(224, 224), { raw: { width: 224, height: 224, channels: 3 } })
      .withIccProfile('p3')
      .jpeg()
      .toBuffer();
    const ignoring = decodeJpegAtSize(p3, 224, 224, false, MAX_PIXELS, true);
    assert.ok(ignoring, 'decoded in the decoder');
    assert.ok(ignoring.equals(await sharpPixels(p3, rgbModel, LIMITS)), "sharp's pixels with ignoreIcc");
    assert.ok((await modelPixels(p3, rgbModel, LIMITS)).equals(ignoring), 'modelPixels takes this path');
    const converting: Preprocessing = { ...rgbModel, colorProfile: 'convert-to-srgb' };
    assert.ok(!(await modelPixels(p3, converting, LIMITS)).equals(ignoring), 'converted by the profile: other values');
    assert.ok((await modelPixels(p3, converting, LIMITS)).equals(await sharpPixels(p3, converting, LIMITS)), 'by sharp');
  });

  test('EXIF orientation 1 (either byte order) is decoded here; any other, or an unreadable IFD, goes to sharp', async () => {
    const plain = await jpeg(256, 256);
    const expected = decodeJpegAtSize(plain, 224, 224, false, MAX_PIXELS)!;
    for (const little of [true, false]) {
      const upright = withExif(plain, 1, little);
      assert.ok(decodeJpegAtSize(upright, 224, 224, false, MAX_PIXELS)?.equals(expected), `orientation 1, ${little ? 'II' : 'MM'}`);
      assert.ok((await sharpPixels(upright, rgbModel, LIMITS)).equals(await sharpPixels(plain, rgbModel, LIMITS)), 'sharp reads that EXIF block too');
      for (const orientation of [6, 3, 0, 9]) assert.equal(jpegFrame(withExif(plain, orientation, little)), undefined, `orientation ${orientation}`);
      assert.equal(jpegFrame(withExif(plain, 1, little, true)), undefined, 'a truncated IFD');
    }
    // sharp agrees that orientation 6 turns the image.
    const turned = withExif(plain, 6, false);
    assert.ok(!(await modelPixels(turned, rgbModel, LIMITS)).equals(expected));
    assert.ok((await modelPixels(turned, rgbModel, LIMITS)).equals(await sharpPixels(turned, rgbModel, LIMITS)));
  });

  test('the byte and pixel limits refuse a JPEG the decoder could take, with the same errors as sharp', async () => {
    const bytes = await jpeg(448, 448);
    for (const limits of [
      { ...LIMITS, maxImagePixels: 448 * 448 - 1 },
      { ...LIMITS, maxImageBytes: bytes.length - 1 },
    ]) {
      const viaSharp = await sharpPixels(bytes, rgbModel, limits).catch((e: Error) => e);
      const viaModel = await modelPixels(bytes, rgbModel, limits).catch((e: Error) => e);
      assert.ok(viaSharp instanceof Error && viaModel instanceof Error);
      assert.equal(viaModel.message, viaSharp.message);
      assert.equal(toApiError(viaModel)?.extensions.code, 'BAD_USER_INPUT');
    }
  });

  test('damaged JPEGs are left to sharp, and the decoder decodes the next good one exactly', async () => {
    const good = await jpeg(256, 256);
    const expected = decodeJpegAtSize(good, 224, 224, false, MAX_PIXELS)!;
    const truncated = good.subarray(0, good.length >> 1);
    const scrambled = Buffer.from(good);
    for (let i = scrambled.length >> 2; i < scrambled.length - 2; i += 7) scrambled[i] ^= 0x5a;
    const headerOnly = good.subarray(0, 200);
    for (const [what, bytes] of [
      ['truncated', truncated],
      ['scrambled', scrambled],
      ['header only', headerOnly],
    ] as const) {
      assert.equal(decodeJpegAtSize(bytes, 224, 224, false, MAX_PIXELS), undefined, what);
      assert.ok(decodeJpegAtSize(good, 224, 224, false, MAX_PIXELS)!.equals(expected), `after ${what}`);
      // What sharp makes of it is what modelPixels gives: the same pixels or the same refusal.
      const viaSharp = await sharpPixels(bytes, rgbModel, LIMITS).catch((e: Error) => e);
      const viaModel = await modelPixels(bytes, rgbModel, LIMITS).catch((e: Error) => e);
      if (viaSharp instanceof Error) assert.equal((viaModel as Error).message, viaSharp.message, what);
      else assert.ok((viaModel as Buffer).equals(viaSharp), what);
    }
  });
});
