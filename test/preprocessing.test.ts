/**
 * The sidecar's resize modes and colour profiles: torchvision's Resize + CenterCrop geometry
 * (against torchvision's own, scripts/make_preprocessing_reference.py), the exact pixels of each
 * mode against sharp's resize cut or padded here, the JPEG decoder's path only where it gives the
 * same geometry, boxes mapped back into the original image, cache identity, and ICC profiles
 * ignored (PIL's values) or converted.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { modelCacheId } from '../src/cache/keys';
import { toApiError } from '../src/errors';
import { decodeJpegAtSize } from '../src/images/jpeg';
import { placement } from '../src/images/placement';
import { inspectImage, modelPixels, preprocess, sharpPixels } from '../src/images/preprocess';
import type { Preprocessing } from '../src/model';
import { FIXTURE_MODELS, FIXTURES, gql, startTestServer } from './helpers';
import { IMAGE_LIMITS, picture, PLAIN_RGB } from './pictures';

const LIMITS = IMAGE_LIMITS;
const REFERENCE = path.join(FIXTURES, 'preprocessing');
const base = PLAIN_RGB;
const crop = (shorterSide: number, height = 224, width = 224): Preprocessing => ({ ...base, height, width, resize: 'center-crop', shorterSide, pad: 0 });
const letterbox = (pad: number): Preprocessing => ({ ...base, resize: 'letterbox', pad });

const png = (raw: Buffer, width: number, height: number) =>
  sharp(raw, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
const jpeg = (width: number, height: number) =>
  sharp(picture(width, height), { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();

/** The image scaled by sharp alone to width × height (what the mode scales to), as raw RGB. */
const scaledBySharp = (bytes: Buffer, width: number, height: number) => sharp(bytes).resize(width, height, { fit: 'fill' }).raw().toBuffer();

/** Rows [top, top + H) and columns [left, left + W) of an image of `width` columns: a crop done here, independently of placement.ts. */
function cut(raw: Buffer, width: number, left: number, top: number, W: number, H: number): Buffer {
  const out = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) raw.copy(out, y * W * 3, ((top + y) * width + left) * 3, ((top + y) * width + left + W) * 3);
  return out;
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

interface GeometryCase {
  image: [number, number];
  shorterSide: number;
  size: [number, number];
  resized: [number, number];
  left: number;
  top: number;
}
const geometry = JSON.parse(fs.readFileSync(path.join(REFERENCE, 'geometry.json'), 'utf8')) as { cases: GeometryCase[] };
const reference = (w: number, h: number, S: number, H = 224, W = 224) =>
  geometry.cases.find((c) => c.image[0] === w && c.image[1] === h && c.shorterSide === S && c.size[0] === H && c.size[1] === W)!;

describe('resize modes', () => {
  test("center-crop places every image exactly where torchvision's Resize(shorterSide) + CenterCrop puts it", () => {
    assert.ok(geometry.cases.length >= 90);
    for (const c of geometry.cases) {
      const at = placement({ width: c.image[0], height: c.image[1] }, crop(c.shorterSide, c.size[0], c.size[1]));
      assert.deepEqual(at, { width: c.resized[0], height: c.resized[1], left: c.left, top: c.top }, JSON.stringify(c));
    }
    // Among them: an odd overhang (341 − 224 = 117) cut at 58 (Python's round(58.5)), and crops padded where the scaled image is smaller.
    assert.ok(geometry.cases.some((c) => c.left === -58 && c.resized[0] === 341));
    assert.ok(geometry.cases.some((c) => c.left > 0 || c.top > 0));
  });

  test("center-crop gives exactly the centre of sharp's resize to the shorter side (a non-square PNG; a crop larger than the scaled image padded)", async () => {
    const raw = picture(500, 375);
    const bytes = await png(raw, 500, 375);
    const r = reference(500, 375, 256);
    const expected = cut(await scaledBySharp(bytes, r.resized[0], r.resized[1]), r.resized[0], -r.left, -r.top, 224, 224);
    const pixels = await modelPixels(bytes, crop(256), LIMITS);
    assert.ok(pixels.equals(expected), 'Resize(256) + CenterCrop(224)');
    assert.ok(meanAbsDiff(pixels, await modelPixels(bytes, base, LIMITS)) > 10, 'not the stretched image');
    // Portrait, into a 224 × 288 crop wider than the scaled image (256): 16 columns of padding each side.
    const tall = await png(picture(375, 500), 375, 500);
    const t = reference(375, 500, 256, 224, 288);
    assert.deepEqual([t.left, t.top], [16, -58]);
    const scaled = await scaledBySharp(tall, t.resized[0], t.resized[1]);
    const got = await modelPixels(tall, { ...crop(256, 224, 288), pad: 7 }, LIMITS);
    for (let y = 0; y < 224; y++) {
      const row = got.subarray(y * 288 * 3, (y + 1) * 288 * 3);
      assert.ok(row.subarray(0, 16 * 3).every((v) => v === 7) && row.subarray((16 + 256) * 3).every((v) => v === 7), `row ${y}: pad`);
      assert.ok(row.subarray(16 * 3, (16 + 256) * 3).equals(scaled.subarray((y + 58) * 256 * 3, (y + 59) * 256 * 3)), `row ${y}: image`);
    }
  });

  test('the geometry is of the image as shown: a landscape JPEG turned by EXIF orientation 6 is cropped as a portrait', async () => {
    const bytes = await sharp(picture(500, 375), { raw: { width: 500, height: 375, channels: 3 } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    assert.deepEqual(await inspectImage(bytes, LIMITS), { format: 'jpeg', width: 375, height: 500 });
    const r = reference(375, 500, 256);
    const shown = await scaledBySharp(await sharp(bytes).rotate().png().toBuffer(), r.resized[0], r.resized[1]);
    assert.ok((await modelPixels(bytes, crop(256), LIMITS)).equals(cut(shown, r.resized[0], -r.left, -r.top, 224, 224)));
  });

  test('a centre crop of a long strip scales only what it keeps; one too long to scale is BAD_USER_INPUT', async () => {
    const strip = (length: number) =>
      sharp(Buffer.alloc(length * 3, 77), { raw: { width: 1, height: length, channels: 3 } })
        .png()
        .toBuffer();
    // 1 × 40000 → 256 × 10240000 (7.9 GB if it were made whole).
    const rss = process.memoryUsage().rss;
    const pixels = await modelPixels(await strip(40000), crop(256), LIMITS);
    assert.ok(pixels.length === 224 * 224 * 3 && pixels.every((v) => v === 77));
    assert.ok(process.memoryUsage().rss - rss < 256 * 2 ** 20, 'no whole scaled strip');
    const error = await modelPixels(await strip(400000), crop(256), LIMITS).catch((e) => e);
    assert.equal(toApiError(error)?.extensions.code, 'BAD_USER_INPUT'); // a plain ImageError, which the API answers as BAD_USER_INPUT
    assert.match(error.message, /1×400000 pixels is too elongated for this model's centre crop: it would be scaled to 256×102400000/);
  });

  test('letterbox fits the image inside on bars of pad, centred (the odd row below)', async () => {
    const bytes = await png(picture(300, 200), 300, 200);
    // 300 × 200 into 224 × 224: 224 × round(149.33) = 149 rows, floor(75 / 2) = 37 above, 38 below.
    assert.deepEqual(placement({ width: 300, height: 200 }, letterbox(114)), { width: 224, height: 149, left: 0, top: 37 });
    assert.deepEqual(placement({ width: 200, height: 300 }, letterbox(114)), { width: 149, height: 224, left: 37, top: 0 });
    const pixels = await modelPixels(bytes, letterbox(114), LIMITS);
    const row = 224 * 3;
    assert.ok(
      pixels.subarray(0, 37 * row).every((v) => v === 114),
      'bar above',
    );
    assert.ok(
      pixels.subarray((37 + 149) * row).every((v) => v === 114),
      'bar below',
    );
    assert.equal(pixels.length - (37 + 149) * row, 38 * row);
    assert.ok(pixels.subarray(37 * row, (37 + 149) * row).equals(await scaledBySharp(bytes, 224, 149)), 'the image between');
  });

  test("the JPEG decoder's path is taken only where its scaled size is the mode's, and gives the same geometry", async () => {
    // 256 × 256 under Resize(256) + CenterCrop(224): decoded at full size (n = 8), then cut: exactly sharp's pixels.
    const square = await jpeg(256, 256);
    const full = decodeJpegAtSize(square, 256, 256, false, LIMITS.maxImagePixels)!;
    const centre = cut(full, 256, 16, 16, 224, 224);
    assert.ok((await modelPixels(square, crop(256), LIMITS)).equals(centre), 'the decoder, cut');
    assert.ok((await sharpPixels(square, crop(256), LIMITS)).equals(centre), "sharp's pixels");
    // Stretched, the same file is scaled by 7/8 in the decoder: another picture.
    assert.ok(!(await modelPixels(square, base, LIMITS)).equals(centre));
    // 584 × 512 → Resize(256) gives 292 × 256 = 4/8: scaled in the decoder, then cut at torchvision's offsets.
    const wide = await jpeg(584, 512);
    const r = reference(584, 512, 256);
    assert.deepEqual(placement({ width: 584, height: 512 }, crop(256)), { width: r.resized[0], height: r.resized[1], left: r.left, top: r.top });
    const half = decodeJpegAtSize(wide, 292, 256, false, LIMITS.maxImagePixels)!;
    const viaDecoder = await modelPixels(wide, crop(256), LIMITS);
    assert.ok(viaDecoder.equals(cut(half, 292, -r.left, -r.top, 224, 224)));
    // sharp's Lanczos resize of the same file is closest to it at that very crop, not one pixel off.
    const bySharp = await scaledBySharp(wide, 292, 256);
    const at = (dx: number, dy: number) => meanAbsDiff(viaDecoder, cut(bySharp, 292, -r.left + dx, -r.top + dy, 224, 224));
    for (const [dx, dy] of [
      [1, 0],
      [-1, 0],
      [0, 1],
      [0, -1],
    ])
      assert.ok(at(0, 0) < at(dx, dy) / 2, `aligned ${at(0, 0).toFixed(2)}, shifted by (${dx}, ${dy}) ${at(dx, dy).toFixed(2)}`);
    // Letterbox: 256 × 192 → 224 × 168 (7/8) on bars of 28 rows.
    const low = await jpeg(256, 192);
    const boxed = await modelPixels(low, letterbox(0), LIMITS);
    assert.ok(boxed.subarray(28 * 224 * 3, (28 + 168) * 224 * 3).equals(decodeJpegAtSize(low, 224, 168, false, LIMITS.maxImagePixels)!));
    assert.ok(meanAbsDiff(boxed, await sharpPixels(low, letterbox(0), LIMITS)) < 4, 'sharp puts it in the same place');
  });
});

/** Display P3 as sharp (libvips) ships it. */
async function p3Profile(): Promise<Buffer> {
  const tagged = await sharp(Buffer.alloc(3), { raw: { width: 1, height: 1, channels: 3 } })
    .withIccProfile('p3')
    .png()
    .toBuffer();
  return (await sharp(tagged).metadata()).icc!;
}

/** A PNG of exactly these stored values carrying an ICC profile (an iCCP chunk written here, after IHDR). */
async function pngWithProfile(raw: Buffer, width: number, height: number, profile: Buffer): Promise<Buffer> {
  const plain = await png(raw, width, height);
  const body = Buffer.concat([Buffer.from('Display P3\0\0', 'latin1'), zlib.deflateSync(profile)]);
  const chunk = Buffer.alloc(12 + body.length);
  chunk.writeUInt32BE(body.length, 0);
  chunk.write('iCCP', 4, 'latin1');
  body.copy(chunk, 8);
  chunk.writeUInt32BE(zlib.crc32(chunk.subarray(4, 8 + body.length)), 8 + body.length);
  const afterHeader = 8 + 25; // signature, IHDR
  return Buffer.concat([plain.subarray(0, afterHeader), chunk, plain.subarray(afterHeader)]);
}

describe('colour profiles', () => {
  test("ignore gives the stored values, exactly what PIL decodes (torchvision's ImageFolder); convert-to-srgb converts by the profile", async () => {
    const bytes = fs.readFileSync(path.join(REFERENCE, 'p3.jpg'));
    assert.ok((await sharp(bytes).metadata()).icc, 'the file carries a profile');
    const pil = await sharp(fs.readFileSync(path.join(REFERENCE, 'p3.pil.png')))
      .raw()
      .toBuffer();
    const at = { ...base, width: 96, height: 64 }; // its own size: pixel for pixel
    const ignored = await modelPixels(bytes, at, LIMITS);
    assert.ok(ignored.equals(pil), "PIL's values");
    assert.ok((await sharpPixels(bytes, at, LIMITS)).equals(pil), 'by sharp too');
    const converted = await modelPixels(bytes, { ...at, colorProfile: 'convert-to-srgb' }, LIMITS);
    assert.ok(converted.equals(await sharp(bytes).toColourspace('srgb').raw().toBuffer()), "sharp's conversion to sRGB");
    const diff = meanAbsDiff(converted, pil);
    assert.ok(diff > 8, `converted differs from PIL's by ${diff.toFixed(1)} levels on average`);
  });

  test('a PNG carrying Display P3: ignore gives the values stored, convert-to-srgb other ones; the input tensors differ likewise', async () => {
    const raw = picture(64, 48, 3);
    const bytes = await pngWithProfile(raw, 64, 48, await p3Profile());
    assert.ok((await sharp(bytes).metadata()).icc, 'sharp reads the profile');
    const at: Preprocessing = { ...base, width: 64, height: 48 };
    assert.ok((await modelPixels(bytes, at, LIMITS)).equals(raw));
    const converted = await modelPixels(bytes, { ...at, colorProfile: 'convert-to-srgb' }, LIMITS);
    assert.ok(meanAbsDiff(converted, raw) > 2, 'P3 to sRGB moves the colours');
    const [a, b] = await Promise.all([preprocess(bytes, at, LIMITS), preprocess(bytes, { ...at, colorProfile: 'convert-to-srgb' }, LIMITS)]);
    assert.equal(a[0], Math.fround(raw[0] / 255));
    assert.notDeepEqual(a, b);
  });
});

describe('models with other preprocessing', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  const dirs: string[] = [];
  // A ramp: R = x, G = y of the original image, so input pixels say where they came from.
  const [W0, H0] = [256, 192];
  const ramp = Buffer.alloc(W0 * H0 * 3);
  for (let y = 0; y < H0; y++) for (let x = 0; x < W0; x++) ramp.set([x, y, 128], (y * W0 + x) * 3);
  let rampPng: Buffer;
  const sidecar = (input: Record<string, unknown>) => ({ input: { size: [224, 224], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], ...input } });
  const MODELS: Record<string, object> = {
    stretch: sidecar({}),
    crop: sidecar({ resize: 'center-crop', shorterSide: 224 }),
    letterbox: sidecar({ resize: 'letterbox', pad: 114 }),
    srgb: sidecar({ colorProfile: 'convert-to-srgb' }),
    'bad-resize': sidecar({ resize: 'crop' }),
    'bad-pad': sidecar({ pad: 3 }),
  };

  beforeAll(async () => {
    const models = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-models-'));
    const datasets = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-datasets-'));
    dirs.push(models, datasets);
    for (const [name, json] of Object.entries(MODELS)) {
      fs.symlinkSync(path.join(FIXTURE_MODELS, 'alexnet.onnx'), path.join(models, `${name}.onnx`));
      fs.writeFileSync(path.join(models, `${name}.json`), JSON.stringify(json));
    }
    rampPng = await png(ramp, W0, H0);
    fs.mkdirSync(path.join(datasets, 'ramps'));
    fs.writeFileSync(path.join(datasets, 'ramps', 'ramp.png'), rampPng);
    fs.writeFileSync(path.join(datasets, 'ramps', 'other.png'), await png(picture(W0, H0), W0, H0));
    server = await startTestServer({ MODELS_DIR: models, DATASETS_DIR: datasets });
  });
  afterAll(async () => {
    await server?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('the sidecar says the mode (GraphQL Model.preprocessing); a mode or setting that does not exist is a model error', async () => {
    const res = await gql(
      server.url,
      `{ models(first: 20) { nodes { name preprocessing { resize shorterSide pad colorProfile } } } modelErrors { file message } }`,
    );
    assert.ok(res.data, JSON.stringify(res.errors));
    const byName = Object.fromEntries(res.data.models.nodes.map((m: { name: string; preprocessing: object }) => [m.name, m.preprocessing]));
    assert.deepEqual(byName.stretch, { resize: 'stretch', shorterSide: null, pad: null, colorProfile: 'ignore' });
    assert.deepEqual(byName.crop, { resize: 'center-crop', shorterSide: 224, pad: 0, colorProfile: 'ignore' });
    assert.deepEqual(byName.letterbox, { resize: 'letterbox', shorterSide: null, pad: 114, colorProfile: 'ignore' });
    assert.equal(byName.srgb.colorProfile, 'convert-to-srgb');
    const errors = Object.fromEntries(res.data.modelErrors.map((e: { file: string; message: string }) => [e.file, e.message]));
    assert.match(errors['bad-resize.onnx'], /input\.resize must be "stretch", "center-crop", "letterbox"; got "crop"/);
    assert.match(errors['bad-pad.onnx'], /input\.pad is only used with "resize": "center-crop" or "letterbox"/);
  });

  test("the mode and the colour profile are part of the model's cache identity and of its prepared inputs", async () => {
    const { registry, inference } = server.services;
    const [stretch, cropped, boxed, srgb] = ['stretch', 'crop', 'letterbox', 'srgb'].map((n) => registry.models.get(n)!);
    assert.equal(new Set([stretch, cropped, boxed, srgb].map((m) => m.sha256)).size, 1, 'one .onnx');
    assert.equal(new Set([stretch, cropped, boxed, srgb].map(modelCacheId)).size, 4);
    const image = { sha256: 'ramp', bytes: rampPng };
    const prepared = await Promise.all([stretch, cropped, boxed].map((m) => inference.prepare(m, image)));
    assert.equal(new Set(prepared.map((p) => p.key)).size, 3);
    assert.notDeepEqual(prepared[0].data, prepared[1].data);
    // Run at once, the three share the .onnx's batches, yet each gets the prediction of its own input.
    const together = await Promise.all([stretch, cropped, boxed].map((m, i) => inference.probabilities(m, prepared[i])));
    for (const [i, m] of [stretch, cropped, boxed].entries()) {
      const alone = await inference.probabilities(m, { key: `alone-${m.name}`, data: await preprocess(rampPng, m.preprocessing, server.services.config) });
      assert.deepEqual(together[i], alone, m.name);
    }
  });

  /** Asserts that `box` (original pixels) is inside the ramp image and holds what the model saw in `inputBox`: its corners' input pixels read (R, G) within 1.5 of the box's corners. */
  function assertCovers(pixels: Buffer, inputBox: Box, box: Box, what: string) {
    assert.ok(
      box.x >= 0 && box.y >= 0 && box.width >= 1 && box.height >= 1 && box.x + box.width <= W0 && box.y + box.height <= H0,
      `${what}: inside the image`,
    );
    const at = (x: number, y: number) => [pixels[(y * 224 + x) * 3], pixels[(y * 224 + x) * 3 + 1]];
    const [r0, g0] = at(inputBox.x, inputBox.y);
    const [r1, g1] = at(inputBox.x + inputBox.width - 1, inputBox.y + inputBox.height - 1);
    const near = (v: number, expected: number, side: string) =>
      assert.ok(Math.abs(v - expected) <= 1.5, `${what}: ${side} ${v} vs ${expected} (${JSON.stringify({ inputBox, box })})`);
    near(r0, box.x, 'left');
    near(g0, box.y, 'top');
    near(r1, box.x + box.width - 1, 'right');
    near(g1, box.y + box.height - 1, 'bottom');
  }

  test("top-9 boxes and patches are in the original image's pixels, where the centre crop took the input from", async () => {
    const layer = '/features/features.1/Relu';
    const start = await gql(server.url, `mutation { buildIndex(model: "crop", dataset: "ramps", layers: ["${layer}"], k: 2) { id } }`);
    assert.ok(start.data, JSON.stringify(start.errors));
    for (let i = 0; ; i++) {
      const jobs = await gql(server.url, `{ jobs { state } }`);
      if (jobs.data.jobs.every((j: { state: string }) => j.state === 'DONE')) break;
      assert.ok(i < 300, 'index built within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const crop224 = server.services.registry.models.get('crop')!.preprocessing;
    const pixels = await modelPixels(rampPng, crop224, server.services.config);
    // 256 × 192 → Resize(224): 298 × 224, the centre 224 from column 37 (torchvision's numbers, not placement.ts's).
    const r = reference(256, 192, 224);
    assert.deepEqual([r.resized, r.left, r.top], [[298, 224], -37, 0]);
    let checked = 0;
    for (const index of [0, 5, 11]) {
      const res = await gql(
        server.url,
        `{ model(name: "crop") { layer(name: "${layer}") { filter(index: ${index}) {
        topActivations(dataset: "ramps") { nodes { image { name width height } position { y x } box { x y width height } patchUrl } } } } } }`,
      );
      assert.ok(res.data, JSON.stringify(res.errors));
      for (const top of res.data.model.layer.filter.topActivations.nodes) {
        if (top.image.name !== 'ramp.png') continue;
        assert.deepEqual([top.image.width, top.image.height], [W0, H0]);
        // The unit's input box by hand: AlexNet's conv1 is 11 × 11, stride 4, padding 2.
        const inputBox = clipped(-2 + 4 * top.position.x, -2 + 4 * top.position.y, 11, 11);
        assertCovers(pixels, inputBox, top.box, `filter ${index}`);
        const patch = await sharp(Buffer.from(await (await fetch(`${server.url}${top.patchUrl}`)).arrayBuffer()))
          .raw()
          .toBuffer({ resolveWithObject: true });
        const scale = Math.max(1, Math.ceil(64 / Math.max(top.box.width, top.box.height)));
        assert.deepEqual([patch.info.width, patch.info.height], [top.box.width * scale, top.box.height * scale], 'the patch is the box');
        assert.deepEqual([...patch.data.subarray(0, 2)], [top.box.x, top.box.y], "the patch's first pixel is the box's");
        checked++;
      }
    }
    assert.ok(checked >= 1, 'the ramp is among the top activations');
  });

  test("a projection's box is its inputBox in the original image's pixels: letterboxed, clipped to the image, one pixel where the unit sees only the bar", async () => {
    const boxed = server.services.registry.models.get('letterbox')!.preprocessing;
    // 256 × 192 letterboxed into 224 × 224: 224 × 168 from row 28.
    assert.deepEqual(placement({ width: W0, height: H0 }, boxed), { width: 224, height: 168, left: 0, top: 28 });
    const pixels = await modelPixels(rampPng, boxed, server.services.config);
    const base64 = rampPng.toString('base64');
    const project = async (y: number, x: number, layer = '/features/features.1/Relu') => {
      const res = await gql(
        server.url,
        `query($img: String!) { model(name: "letterbox") { layer(name: "${layer}") { filter(index: 3) {
        projection(image: { base64: $img }, seed: POSITION, position: { y: ${y}, x: ${x} }) { inputBox { x y width height } box { x y width height } imageUrl(crop: true) } } } } }`,
        { img: base64 },
      );
      assert.ok(res.data, JSON.stringify(res.errors));
      return res.data.model.layer.filter.projection as { inputBox: Box; box: Box; imageUrl: string };
    };
    const middle = await project(27, 27);
    assert.deepEqual(middle.inputBox, clipped(-2 + 4 * 27, -2 + 4 * 27, 11, 11));
    assertCovers(pixels, middle.inputBox, middle.box, 'middle');
    const cropped = await sharp(Buffer.from(await (await fetch(`${server.url}${middle.imageUrl}`)).arrayBuffer())).metadata();
    assert.deepEqual([cropped.width! % middle.inputBox.width, cropped.height! % middle.inputBox.height], [0, 0], 'imageUrl(crop) cuts the input box');
    // Rows 24–34 of the input: the top 4 are bar, so the box starts at the image's row 0.
    const edge = await project(6, 10);
    assert.deepEqual(edge.inputBox, { x: 38, y: 22, width: 11, height: 11 });
    assert.equal(edge.box.y, 0);
    assert.equal(edge.box.height, Math.ceil(((22 + 11 - 28) * H0) / 168));
    // Input rows 2–12 are all bar: the nearest pixel of the image, its top row.
    const bar = await project(1, 10);
    assert.deepEqual([bar.box.y, bar.box.height], [0, 1]);
  });
});

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A window of the 224 × 224 input, clipped to it. */
function clipped(x: number, y: number, width: number, height: number): Box {
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  return { x: x0, y: y0, width: Math.min(224, x + width) - x0, height: Math.min(224, y + height) - y0 };
}
