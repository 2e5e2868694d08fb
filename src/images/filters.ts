/** Pictures of first-layer kernels (ZF Fig. 6): RGB or grey, 0 at mid-grey, upscaled. */
import type { Model } from '../model';
import { LayerWeights } from '../registry/weights';
import { FloatImage, grid, png, signedToPixels, upscaleFor, upscalePixels } from './render';

/** The kernel as a displayable image: channels in RGB order (BGR models are flipped). */
function kernelImage(model: Model, weights: LayerWeights, index: number): FloatImage | null {
  const [c, h, w] = weights.filterShape;
  if (!weights.readsImage || (c !== 1 && c !== 3)) return null;
  let data = weights.filter(index);
  if (c === 3 && model.preprocessing.channels === 'BGR') {
    const plane = h * w;
    data = Float32Array.from([...data.subarray(2 * plane), ...data.subarray(plane, 2 * plane), ...data.subarray(0, plane)]);
  }
  return { channels: c, height: h, width: w, data };
}

export function hasKernelImages(weights: LayerWeights): boolean {
  const c = weights.filterShape[0];
  return weights.readsImage && weights.filterShape.length === 3 && (c === 1 || c === 3);
}

export async function kernelPng(model: Model, weights: LayerWeights, index: number): Promise<Buffer> {
  const img = kernelImage(model, weights, index)!;
  return png(signedToPixels(img, weights.maxAbs), img.width, img.height, img.channels, upscaleFor(img.width));
}

export async function kernelGridPng(model: Model, weights: LayerWeights): Promise<Buffer> {
  const [c, h, w] = weights.filterShape;
  const factor = upscaleFor(w, 32);
  const tiles = Array.from({ length: weights.count }, (_, i) =>
    upscalePixels(signedToPixels(kernelImage(model, weights, i)!, weights.maxAbs), w, h, c, factor),
  );
  const g = grid(tiles, w * factor, h * factor, c, 2, 255);
  return png(g.pixels, g.width, g.height, c);
}
