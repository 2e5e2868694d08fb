/**
 * Image bytes → the model's input tensor: decode (JPEG, PNG, WebP, GIF, TIFF), honour EXIF
 * orientation, apply or ignore an embedded ICC profile (the sidecar's colorProfile), flatten
 * transparency onto white, convert to the model's channels, bring it to its input size as the
 * sidecar's resize mode says (placement.ts: stretch, centre crop or letterbox; an image that
 * needs no scaling is used pixel for pixel), then x = ((pixel · scale) − mean) / std per
 * channel, channels-first. A JPEG whose scaled size is n/8 of it (n = 1…8: 256×256 for
 * 224×224 stretched) is scaled while it is decoded instead (jpeg.ts). When modelPixels gives
 * other pixels for the same bytes, bump PIXELS_VERSION (cache/keys.ts).
 */
import sharp from 'sharp';
import type { Preprocessing } from '../model';
import { canScaleJpeg, decodeScaledJpeg, jpegFrame } from './jpeg';
import { place, placement, visiblePart } from './placement';
import { withChannels } from './render';

/** The bytes are not an image this server can use (format, size, damage): the caller's fault (BAD_USER_INPUT). */
export class ImageError extends Error {}

export interface ImageLimits {
  maxImageBytes: number;
  maxImagePixels: number;
}

const FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff']);

/**
 * The file signatures of those formats. Bytes without one never reach libvips, whose other
 * loaders (SVG, PDF, HEIF …) would parse them, and an SVG can reference other files.
 */
function hasImageSignature(b: Buffer): boolean {
  const starts = (...sig: number[]) => sig.every((v, i) => b[i] === v);
  return (
    starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a) || // PNG
    starts(0xff, 0xd8, 0xff) || // JPEG
    starts(0x47, 0x49, 0x46, 0x38) || // GIF8
    (starts(0x52, 0x49, 0x46, 0x46) && b.subarray(8, 12).toString('latin1') === 'WEBP') || // RIFF….WEBP
    starts(0x49, 0x49, 0x2a, 0x00) || // TIFF, little-endian
    starts(0x4d, 0x4d, 0x00, 0x2a) || // TIFF, big-endian
    starts(0x49, 0x49, 0x2b, 0x00) || // BigTIFF
    starts(0x4d, 0x4d, 0x00, 0x2b)
  );
}

export interface ImageInfo {
  format: string;
  /** As shown: EXIF orientation applied. */
  width: number;
  height: number;
}

/** Reads only the header: format and size (as shown), with the limits enforced. */
export async function inspectImage(bytes: Buffer, limits: ImageLimits): Promise<ImageInfo> {
  if (bytes.byteLength > limits.maxImageBytes) {
    throw new ImageError(`image of ${bytes.byteLength} bytes is over the limit of ${limits.maxImageBytes} (MAX_IMAGE_MB)`);
  }
  if (!hasImageSignature(bytes)) throw new ImageError('the bytes are not an image convscope can read (JPEG, PNG, WebP, GIF or TIFF)');
  let meta: sharp.Metadata;
  try {
    // Only the header is read here (no pixels are decoded), so no pixel limit is needed to read
    // it; the size is checked below with a message that says so (decompression bombs).
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new ImageError('the bytes are not an image convscope can read (JPEG, PNG, WebP, GIF or TIFF)');
  }
  if (!meta.format || !FORMATS.has(meta.format) || !meta.width || !meta.height) {
    throw new ImageError(`unsupported image format "${meta.format ?? 'unknown'}": use JPEG, PNG, WebP, GIF or TIFF`);
  }
  if (meta.width * meta.height > limits.maxImagePixels) {
    throw new ImageError(`image of ${meta.width}×${meta.height} pixels is over the limit of ${limits.maxImagePixels} (MAX_IMAGE_PIXELS)`);
  }
  return { format: meta.format, width: meta.autoOrient.width, height: meta.autoOrient.height };
}

/**
 * Runs decodes one at a time, each in a turn of the event loop of its own: the JPEG decoder
 * is synchronous, and a batch of 16 decoded at once would hold the loop for about 20 ms.
 */
let decoding: Promise<unknown> = Promise.resolve();
function inItsOwnTurn<T>(decode: () => T): Promise<T> {
  const result = decoding.then(() => new Promise((resolve) => setImmediate(resolve))).then(decode);
  decoding = result.catch(() => undefined);
  return result;
}

/** 8-bit pixels at the model's input size, channels interleaved in RGB (or grey) order. */
export async function modelPixels(bytes: Buffer, p: Preprocessing, limits: ImageLimits): Promise<Buffer> {
  const grey = p.channels === 'GRAY';
  const frame = bytes.byteLength <= limits.maxImageBytes ? jpegFrame(bytes) : undefined;
  const at = frame && placement(frame, p); // a JPEG that jpegFrame accepts is upright
  if (at && canScaleJpeg(frame, at.width, at.height, grey, limits.maxImagePixels, p.colorProfile === 'ignore')) {
    const scaled = await inItsOwnTurn(() => decodeScaledJpeg(bytes, at.width, at.height, grey));
    if (scaled) return place(scaled, grey ? 1 : 3, at, p); // else a damaged file: sharp says what is wrong with it
  }
  return sharpPixels(bytes, p, limits);
}

/** The longest side sharp scales to. */
const MAX_SCALED_SIDE = 100_000_000;

/** modelPixels() by sharp alone: every format and case, scaled with its default (Lanczos 3) kernel. */
export async function sharpPixels(bytes: Buffer, p: Preprocessing, limits: ImageLimits): Promise<Buffer> {
  const info = await inspectImage(bytes, limits);
  const at = placement(info, p);
  // Only what lands in the input is computed (libvips works on demand): a centre crop of a
  // panorama would otherwise scale the whole strip.
  const part = visiblePart(at, p);
  if (Math.max(at.width, at.height) > MAX_SCALED_SIDE) {
    throw new ImageError(
      `an image of ${info.width}×${info.height} pixels is too elongated for this model's centre crop: it would be scaled to ${at.width}×${at.height}`,
    );
  }
  const channels = p.channels === 'GRAY' ? 1 : 3;
  try {
    let img = sharp(bytes, { limitInputPixels: limits.maxImagePixels, failOn: 'error', ignoreIcc: p.colorProfile === 'ignore' })
      .rotate()
      .flatten({ background: '#ffffff' });
    img = channels === 1 ? img.grayscale() : img.toColourspace('srgb');
    if (info.width !== at.width || info.height !== at.height) img = img.resize(at.width, at.height, { fit: 'fill' });
    if (part.width !== at.width || part.height !== at.height) img = img.extract({ left: part.x, top: part.y, width: part.width, height: part.height });
    const { data, info: out } = await img.raw().toBuffer({ resolveWithObject: true });
    return place(withChannels(data, out.channels, channels), channels, at, p, part);
  } catch (e) {
    throw new ImageError(`the image could not be decoded: ${(e as Error).message}`);
  }
}

/**
 * The model's input value of every 8-bit pixel value, per input channel c: ((v·scale) − mean_c) /
 * std_c at [c·256 + v]. The one definition of normalisation: preprocess() looks values up in it,
 * and so do graphs that take pixels (compileChannelMaxima), so both give the same float32s.
 */
export function normalisationTable(p: Preprocessing): Float32Array {
  const C = p.channels === 'GRAY' ? 1 : 3;
  const table = new Float32Array(C * 256);
  for (let c = 0; c < C; c++) for (let v = 0; v < 256; v++) table[c * 256 + v] = (v * p.scale - p.mean[c]) / p.std[c];
  return table;
}

/** Which decoded channel (modelPixels: RGB or grey) feeds input channel c. */
export function sourceChannel(p: Preprocessing, c: number): number {
  return p.channels === 'BGR' ? 2 - c : c;
}

/** The input tensor [C, H, W] of one image. */
export async function preprocess(bytes: Buffer, p: Preprocessing, limits: ImageLimits): Promise<Float32Array> {
  const pixels = await modelPixels(bytes, p, limits);
  const table = normalisationTable(p);
  const C = table.length / 256;
  const plane = p.width * p.height;
  const out = new Float32Array(C * plane);
  for (let c = 0; c < C; c++) {
    const values = table.subarray(c * 256, (c + 1) * 256);
    const plane_c = out.subarray(c * plane, (c + 1) * plane);
    for (let i = 0, j = sourceChannel(p, c); i < plane; i++, j += C) plane_c[i] = values[pixels[j]];
  }
  return out;
}

/**
 * The input tensor [C, H, W] of pixel values [H, W, C] (RGB or grey, as modelPixels gives them)
 * that need not be whole levels (a transformed image's bilinear samples), by the formula of
 * normalisationTable: whole levels give exactly preprocess()'s float32s.
 */
export function normalisePixels(values: ArrayLike<number>, p: Preprocessing): Float32Array {
  const C = p.channels === 'GRAY' ? 1 : 3;
  const plane = p.width * p.height;
  const out = new Float32Array(C * plane);
  for (let c = 0; c < C; c++) {
    for (let i = 0, j = sourceChannel(p, c); i < plane; i++, j += C) out[c * plane + i] = (values[j] * p.scale - p.mean[c]) / p.std[c];
  }
  return out;
}
