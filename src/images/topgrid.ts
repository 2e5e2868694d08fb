/**
 * ZF Fig. 2 as one PNG: for each filter, a √k×√k block of projections (each cropped to its
 * receptive field) beside the same block of image patches; filters in a near-square grid.
 */
import sharp from 'sharp';
import { withChannels } from './render';

/** A picture for one tile: a sharp pipeline not yet run, and its size (small ones scale up by nearest neighbour). */
export interface Tile {
  image: sharp.Sharp;
  width: number;
  height: number;
}

export interface FilterTiles {
  projections: Tile[];
  patches: Tile[];
}

export async function topGridPng(filters: FilterTiles[], k: number, tile = 48): Promise<Buffer> {
  const side = Math.ceil(Math.sqrt(k));
  const gap = 1;
  const blockGap = 10;
  const half = side * tile + (side - 1) * gap;
  const blockW = 2 * half + 4;
  const blockH = half;
  const cols = Math.ceil(Math.sqrt(filters.length));
  const rows = Math.ceil(filters.length / cols);
  const width = cols * blockW + (cols - 1) * blockGap;
  const height = rows * blockH + (rows - 1) * blockGap;
  // Each tile is one sharp pipeline to raw RGB at the tile size, all run concurrently (libuv's
  // pool), copied into one canvas that is encoded once: no intermediate PNGs, no composite of
  // k·filters overlays.
  const scaled = async ({ image, width: w, height: h }: Tile) => {
    const kernel = Math.max(w, h) < tile ? 'nearest' : 'lanczos3';
    const { data, info } = await image
      .resize(tile, tile, { fit: 'contain', background: '#ffffff', kernel })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return withChannels(data, info.channels, 3);
  };
  const canvas = Buffer.alloc(width * height * 3, 0xff);
  const paste = (pixels: Buffer, left: number, top: number) => {
    for (let y = 0; y < tile; y++) pixels.copy(canvas, ((top + y) * width + left) * 3, y * tile * 3, (y + 1) * tile * 3);
  };
  await Promise.all(
    filters.flatMap((filter, f) => {
      const x0 = (f % cols) * (blockW + blockGap);
      const y0 = Math.floor(f / cols) * (blockH + blockGap);
      const place = (tiles: Tile[], dx: number) =>
        tiles.map(async (t, i) => paste(await scaled(t), x0 + dx + (i % side) * (tile + gap), y0 + Math.floor(i / side) * (tile + gap)));
      return [...place(filter.projections, 0), ...place(filter.patches, half + 4)];
    }),
  );
  return sharp(canvas, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}
