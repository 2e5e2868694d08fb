/** The benches' stand-in dataset: `count` 256×256 JPEGs of hashed noise, the same bytes every run. */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export async function syntheticJpegs(dir: string, count: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const raw = Buffer.alloc(256 * 256 * 3);
    for (let p = 0; p < raw.length; p++) raw[p] = (p * (i + 7) * 2654435761) >>> 24;
    const jpeg = await sharp(raw, { raw: { width: 256, height: 256, channels: 3 } })
      .jpeg()
      .toBuffer();
    fs.writeFileSync(path.join(dir, `img-${String(i).padStart(5, '0')}.jpg`), jpeg);
  }
}
