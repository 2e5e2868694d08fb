/** Crops of original images: the receptive-field patches of ZF Fig. 2. */
import sharp from 'sharp';
import type { Box } from './maps';
import { png, upscaleFor } from './render';

/** An image's 8-bit pixels as shown (EXIF orientation applied), interleaved. */
export interface Pixels {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

/** The box of an image, as a sharp pipeline not yet run. */
export function patch(bytes: Buffer, box: Box): sharp.Sharp {
  return sharp(bytes).rotate().extract({ left: box.x, top: box.y, width: box.width, height: box.height });
}

/** The box of an image as PNG, small crops upscaled (nearest) to at least `minSide` pixels. */
export async function patchPng(bytes: Buffer, box: Box, minSide = 64): Promise<Buffer> {
  return pixelsPng(await raw(patch(bytes, box)), minSide);
}

/** A whole image's pixels: decoded once for many patches (cropPixels), as patch() would cut them. */
export function imagePixels(bytes: Buffer): Promise<Pixels> {
  return raw(sharp(bytes).rotate());
}

/** The box of `image`'s pixels. */
export function cropPixels(image: Pixels, box: Box): Pixels {
  const { data, width, channels } = image;
  const out = Buffer.alloc(box.width * box.height * channels);
  for (let y = 0; y < box.height; y++) {
    const from = ((box.y + y) * width + box.x) * channels;
    data.copy(out, y * box.width * channels, from, from + box.width * channels);
  }
  return { data: out, width: box.width, height: box.height, channels };
}

/** Pixels as PNG, upscaled (nearest) to at least `minSide` pixels on their longer side. */
export function pixelsPng({ data, width, height, channels }: Pixels, minSide = 64): Promise<Buffer> {
  return png(data, width, height, channels, upscaleFor(Math.max(width, height), minSide));
}

/** A pipeline's output as pixels in sRGB (a grey image stays grey, CMYK becomes RGB). */
async function raw(img: sharp.Sharp): Promise<Pixels> {
  const { data, info } = await img.toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}
