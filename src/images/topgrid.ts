/**
 * ZF Fig. 2 as one PNG: for each filter, a √k×√k block of projections (each cropped to its
 * receptive field) beside the same block of image patches; filters in a near-square grid.
 */
import sharp from 'sharp';

export interface FilterTiles {
  projections: Buffer[];
  patches: Buffer[];
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
  const resize = (png: Buffer) => sharp(png).resize(tile, tile, { fit: 'contain', background: '#ffffff' }).removeAlpha().png().toBuffer();
  const composites: sharp.OverlayOptions[] = [];
  for (let f = 0; f < filters.length; f++) {
    const x0 = (f % cols) * (blockW + blockGap);
    const y0 = Math.floor(f / cols) * (blockH + blockGap);
    const place = async (tiles: Buffer[], dx: number) => {
      for (let i = 0; i < tiles.length; i++) {
        composites.push({ input: await resize(tiles[i]), left: x0 + dx + (i % side) * (tile + gap), top: y0 + Math.floor(i / side) * (tile + gap) });
      }
    };
    await place(filters[f].projections, 0);
    await place(filters[f].patches, half + 4);
  }
  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).composite(composites).png().toBuffer();
}
