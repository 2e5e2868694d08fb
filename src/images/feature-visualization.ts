/** Pictures of feature visualizations: the batch's images side by side, at their own size (8-bit: the picture fed back to the model is what it saw, within quantisation). */
import { grid, png } from './render';

/** `pixels` [batch, C, size, size] in [0, 1] (C = 1: grey, 3: RGB; otherwise the first channel, grey) as one PNG, 2 white pixels between images. */
export function featureVisualizationPng(pixels: Float32Array, batch: number, channels: number, size: number): Promise<Buffer> {
  const C = channels === 3 ? 3 : 1;
  const plane = size * size;
  const tiles = Array.from({ length: batch }, (_, b) => {
    const tile = Buffer.alloc(plane * C);
    for (let c = 0; c < C; c++) {
      const from = (b * channels + c) * plane;
      for (let i = 0; i < plane; i++) tile[i * C + c] = Math.round(Math.min(1, Math.max(0, pixels[from + i])) * 255);
    }
    return tile;
  });
  const { pixels: out, width, height } = grid(tiles, size, size, C, 2, 255, batch);
  return png(out, width, height, C);
}
