/**
 * JPEG decoding straight to a model's input size, by libjpeg-turbo's scaling in the decoder
 * (the inverse DCT computed at n/8 of the size: 7/8 turns the usual 256×256 dataset image into
 * 224×224). It is the shrink-on-load libvips does for 1/2, 1/4 and 1/8, for the other factors
 * libjpeg-turbo has, and it replaces a resize that costs more than the decoding itself: sharp's
 * whole pipeline takes 3–6 ms of CPU per 256×256 image, this about 1.2 ms. At n = 8 (an image
 * already at the input size) it gives exactly sharp's pixels.
 *
 * libjpeg-turbo runs as WebAssembly (@cwasm/jpeg-turbo's build): sandboxed, with no native
 * install. Only plain cases take this path; anything else gives undefined and the caller uses
 * sharp, which applies what this does not: EXIF orientation, ICC profiles, CMYK, any other
 * factor, and its own error reporting for damaged files.
 */
import fs from 'node:fs';

const TJPF_RGB = 0;
const TJPF_GRAY = 6;
/** tjDecompressHeader3's colourspaces this path decodes: RGB, YCbCr, grey (not CMYK, YCCK). */
const TJCS_GRAY = 2;

interface Exports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(pointer: number): void;
  tjInitDecompress(): number;
  tjDecompressHeader3(handle: number, jpeg: number, size: number, width: number, height: number, subsampling: number, colourspace: number): number;
  tjDecompress2(handle: number, jpeg: number, size: number, out: number, width: number, pitch: number, height: number, format: number, flags: number): number;
}

let compiled: WebAssembly.Module | undefined;

/** One decompressor and its buffers in one instance (a failure discards the whole instance). */
class Decoder {
  private readonly wasm: Exports;
  private readonly handle: number;
  private readonly header: number;
  private input = { pointer: 0, size: 0 };
  private output = { pointer: 0, size: 0 };

  constructor() {
    compiled ??= new WebAssembly.Module(fs.readFileSync(require.resolve('@cwasm/jpeg-turbo/jpeg-turbo.wasm')));
    const unavailable = () => {
      throw new Error('not available to the JPEG decoder');
    };
    const instance = new WebAssembly.Instance(compiled, {
      // libjpeg leaves a failed decode by longjmp: here a throw, out of the whole call.
      env: { setjmp: () => 0, longjmp: () => { throw new Error('libjpeg error'); } },
      wasi_snapshot_preview1: { environ_sizes_get: () => 0, environ_get: unavailable, proc_exit: unavailable, fd_close: unavailable, fd_seek: unavailable, fd_write: unavailable },
    });
    this.wasm = instance.exports as unknown as Exports;
    this.handle = this.wasm.tjInitDecompress();
    this.header = this.wasm.malloc(16);
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

  decode(bytes: Buffer, width: number, height: number, grey: boolean, maxPixels: number): Buffer | undefined {
    const w = this.wasm;
    const input = this.reserve(this.input, bytes.byteLength);
    new Uint8Array(w.memory.buffer, input, bytes.byteLength).set(bytes);
    if (w.tjDecompressHeader3(this.handle, input, bytes.byteLength, this.header, this.header + 4, this.header + 8, this.header + 12) !== 0) return undefined;
    const [fileWidth, fileHeight, , colourspace] = new Int32Array(w.memory.buffer, this.header, 4);
    if (fileWidth * fileHeight > maxPixels || colourspace > TJCS_GRAY) return undefined;
    // A grey model takes sharp's luminance of a colour image, which isn't libjpeg's Y.
    if (grey && colourspace !== TJCS_GRAY) return undefined;
    const n = (8 * width) / fileWidth;
    if (!Number.isInteger(n) || n < 1 || n > 16 || n * fileHeight !== 8 * height) return undefined;
    const channels = grey ? 1 : 3;
    const out = this.reserve(this.output, width * height * channels);
    // Non-zero: an error or a warning (a truncated file, say): sharp decides what it is.
    if (w.tjDecompress2(this.handle, input, bytes.byteLength, out, width, width * channels, height, grey ? TJPF_GRAY : TJPF_RGB, 0) !== 0) return undefined;
    return Buffer.from(new Uint8Array(w.memory.buffer, out, width * height * channels));
  }
}

let decoder: Decoder | undefined;

/**
 * The pixels of a JPEG at width × height (RGB interleaved, or grey), when it is a plain JPEG
 * whose size is exactly n/8 of that (n = 1…16); else undefined.
 */
export function decodeJpegAtSize(bytes: Buffer, width: number, height: number, grey: boolean, maxPixels: number): Buffer | undefined {
  if (!isPlainJpeg(bytes)) return undefined;
  try {
    decoder ??= new Decoder();
    return decoder.decode(bytes, width, height, grey, maxPixels);
  } catch {
    decoder = undefined; // a throw leaves libjpeg's state undefined: start afresh next time
    return undefined;
  }
}

/** A JPEG whose pixels need nothing sharp would apply: no ICC profile, EXIF orientation 1 or none. */
export function isPlainJpeg(b: Buffer): boolean {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return false;
  for (let i = 2; i + 4 <= b.length; ) {
    if (b[i] !== 0xff) return false;
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xda) return true; // start of scan: the headers are done
    const start = i + 4;
    const end = i + 2 + b.readUInt16BE(i + 2);
    if (end > b.length) return false;
    if (marker === 0xe2 && b.toString('latin1', start, start + 12) === 'ICC_PROFILE\0') return false;
    if (marker === 0xe1 && b.toString('latin1', start, start + 6) === 'Exif\0\0' && exifOrientation(b.subarray(start + 6, end)) !== 1) return false;
    i = end;
  }
  return false;
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
