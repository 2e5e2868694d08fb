/** Crops of original images: the receptive-field patches of ZF Fig. 2. */
import sharp from 'sharp';
import type { Box } from './maps';

/** The box of an image, as a sharp pipeline not yet run. */
export function patch(bytes: Buffer, box: Box): sharp.Sharp {
  return sharp(bytes).rotate().extract({ left: box.x, top: box.y, width: box.width, height: box.height });
}

/** The box of an image as PNG, small crops upscaled (nearest) to at least `minSide` pixels. */
export async function patchPng(bytes: Buffer, box: Box, minSide = 64): Promise<Buffer> {
  let img = patch(bytes, box);
  const factor = Math.ceil(minSide / Math.max(box.width, box.height));
  if (factor > 1) img = sharp(await img.png().toBuffer()).resize(box.width * factor, box.height * factor, { kernel: 'nearest' });
  return img.png().toBuffer();
}
