/**
 * JPEG decoding straight to a model's input size, by libjpeg-turbo's scaling in the decoder
 * (the inverse DCT computed at n/8 of the size: at 7/8, the usual 256×256 dataset image comes
 * out 224×224). It is the shrink-on-load libvips does at 1/2, 1/4 and 1/8, for the other
 * factors libjpeg-turbo has, and it replaces a resize that costs more than decoding: sharp's
 * whole pipeline takes 3–6 ms of CPU per 256×256 image, this about 1.2 ms. At n = 8 (an image
 * already at the input size) it gives exactly sharp's pixels; it never enlarges (n > 8).
 *
 * libjpeg-turbo runs as WebAssembly (the build in @cwasm/jpeg-turbo): sandboxed, no native
 * install. Only plain cases take this path (canScaleJpeg); sharp does the rest, and applies
 * what this does not: EXIF orientation, ICC profiles (for models that convert by them), CMYK,
 * other factors, and its own error reporting for damaged files.
 */
import fs from 'node:fs';

const TJPF_RGB = 0;
const TJPF_GRAY = 6;

/** Compiled when this module loads: a missing or broken build fails the start, not each image. */
const MODULE = new WebAssembly.Module(fs.readFileSync(require.resolve('@cwasm/jpeg-turbo/jpeg-turbo.wasm')));

interface Exports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(pointer: number): void;
  tjInitDecompress(): number;
  tjDecompress2(handle: number, jpeg: number, size: number, out: number, width: number, pitch: number, height: number, format: number, flags: number): number;
}

/** One decompressor and its buffers in one instance (a failure discards the whole instance). */
class Decoder {
  private readonly wasm: Exports;
  private readonly handle: number;
  private input = { pointer: 0, size: 0 };
  private output = { pointer: 0, size: 0 };

  constructor() {
    const unavailable = () => {
      throw new Error('not available to the JPEG decoder');
    };
    const instance = new WebAssembly.Instance(MODULE, {
      // libjpeg leaves a failed decode by longjmp: here a throw, out of the whole call.
      env: {
        setjmp: () => 0,
        longjmp: () => {
          throw new Error('libjpeg error');
        },
      },
      wasi_snapshot_preview1: {
        environ_sizes_get: () => 0,
        environ_get: unavailable,
        proc_exit: unavailable,
        fd_close: unavailable,
        fd_seek: unavailable,
        fd_write: unavailable,
      },
    });
    this.wasm = instance.exports as unknown as Exports;
    this.handle = this.wasm.tjInitDecompress();
  }

  private reserve(buffer: { pointer: number; size: number }, size: number): number {
    if (size > buffer.size) {
      if (buffer.pointer) this.wasm.free(buffer.pointer);
      buffer.pointer = this.wasm.malloc(size);
      buffer.size = size;
      if (!buffer.pointer) throw new Error('out of memory');
    }
    return buffer.pointer;
  }

  decode(bytes: Buffer, width: number, height: number, grey: boolean): Buffer | undefined {
    const w = this.wasm;
    const input = this.reserve(this.input, bytes.byteLength);
    new Uint8Array(w.memory.buffer, input, bytes.byteLength).set(bytes);
    const channels = grey ? 1 : 3;
    const out = this.reserve(this.output, width * height * channels);
    // Non-zero: an error or a warning (a truncated file, say): sharp decides what it is.
    if (w.tjDecompress2(this.handle, input, bytes.byteLength, out, width, width * channels, height, grey ? TJPF_GRAY : TJPF_RGB, 0) !== 0) return undefined;
    return Buffer.from(new Uint8Array(w.memory.buffer, out, width * height * channels)); // a copy
  }
}

let decoder: Decoder | undefined;

/**
 * Whether a JPEG of `frame` (see jpegFrame) can be decoded here to width × height: at most
 * maxPixels, a size that is n/8 of it (n = 1…8) on both axes, for a grey model (`grey`) a grey
 * JPEG (sharp's luminance of a colour image isn't libjpeg's Y), and no ICC profile unless the
 * model ignores profiles (`ignoreIcc`: the stored values are what this decoder gives; else sharp
 * converts by the profile).
 */
export function canScaleJpeg(frame: JpegFrame | undefined, width: number, height: number, grey: boolean, maxPixels: number, ignoreIcc: boolean): boolean {
  if (!frame || frame.width * frame.height > maxPixels || (grey && frame.components !== 1) || (frame.icc && !ignoreIcc)) return false;
  const n = (8 * width) / frame.width;
  return Number.isInteger(n) && n >= 1 && n <= 8 && n * frame.height === 8 * height;
}

/** A JPEG that canScaleJpeg accepts, decoded to width × height (RGB interleaved, or grey); undefined if it is damaged. */
export function decodeScaledJpeg(bytes: Buffer, width: number, height: number, grey: boolean): Buffer | undefined {
  try {
    decoder ??= new Decoder();
    return decoder.decode(bytes, width, height, grey);
  } catch {
    decoder = undefined; // a throw leaves libjpeg's state undefined: start afresh next time
    return undefined;
  }
}

/** canScaleJpeg, then decodeScaledJpeg. */
export function decodeJpegAtSize(bytes: Buffer, width: number, height: number, grey: boolean, maxPixels: number, ignoreIcc = false): Buffer | undefined {
  return canScaleJpeg(jpegFrame(bytes), width, height, grey, maxPixels, ignoreIcc) ? decodeScaledJpeg(bytes, width, height, grey) : undefined;
}

export interface JpegFrame {
  width: number;
  height: number;
  components: number;
  /** It carries an ICC profile. */
  icc: boolean;
}

/**
 * The frame of a plain JPEG: 8-bit, Huffman-coded baseline, extended or progressive, with one
 * or three components, EXIF orientation 1 or none. Else undefined.
 */
export function jpegFrame(b: Buffer): JpegFrame | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let frame: Omit<JpegFrame, 'icc'> | undefined;
  let icc = false;
  for (let i = 2; i + 4 <= b.length;) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xda) return frame && { ...frame, icc }; // start of scan: the headers are done
    const start = i + 4;
    const end = i + 2 + b.readUInt16BE(i + 2);
    if (end > b.length) return undefined;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      // A start of frame: SOF0–2 are 8-bit Huffman; lossless, hierarchical and arithmetic ones go to sharp.
      if (marker > 0xc2 || end - start < 6 || b[start] !== 8) return undefined;
      frame = { height: b.readUInt16BE(start + 1), width: b.readUInt16BE(start + 3), components: b[start + 5] };
      if (frame.components !== 1 && frame.components !== 3) return undefined;
    }
    if (marker === 0xe2 && b.toString('latin1', start, start + 12) === 'ICC_PROFILE\0') icc = true;
    if (marker === 0xe1 && b.toString('latin1', start, start + 6) === 'Exif\0\0' && exifOrientation(b.subarray(start + 6, end)) !== 1) return undefined;
    i = end;
  }
  return undefined;
}

/** The orientation tag of an EXIF block (a TIFF header and IFD0), 1 when absent; 0 when unreadable. */
function exifOrientation(tiff: Buffer): number {
  try {
    const little = tiff.toString('latin1', 0, 2) === 'II';
    const u16 = (o: number) => (little ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
    const ifd = little ? tiff.readUInt32LE(4) : tiff.readUInt32BE(4);
    for (let k = 0, count = u16(ifd); k < count; k++) {
      const entry = ifd + 2 + 12 * k;
      if (u16(entry) === 0x0112) return u16(entry + 8);
    }
    return 1;
  } catch {
    return 0;
  }
}
