/** The benches' stand-in dataset: `count` 256×256 JPEGs of hashed noise, the same bytes every run. */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { seedTensor } from '../src/compiler/projection';
import type { PreparedImage } from '../src/engine/engine';
import type { ProjectionItem } from '../src/engine/projections';
import type { Layer, Model } from '../src/model';
import type { Method } from '../src/vocabulary';

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

/** A preprocessed input of `model`'s shape, the same every run: sin(i · 12.9898) · scale, keyed `key`. */
export function syntheticInput(model: Model, key: string, scale = 1): { key: string; data: Float32Array } {
  return { key, data: Float32Array.from({ length: model.inputShape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 12.9898) * scale) };
}

/** The engine's request for `layer`'s first unit on `image` by `method`, MAX seed, LRN as identity. */
export function firstUnitRequest(model: Model, layer: Layer, method: Method, image: PreparedImage): ProjectionItem {
  return { target: seedTensor(model.graph, layer.node), method, lrn: 'IDENTITY', image, channel: 0, seed: 'MAX' };
}
