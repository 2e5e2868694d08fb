/**
 * Regenerates the README's pictures: the quickstart's (docs/quickstart-*.png), by running its
 * queries, and the gallery's screenshots (docs/gallery-*.png), against a fresh server on the
 * repository's own models and datasets, and the feature visualizations of relu5's first eight
 * filters (docs/feature-visualization.png). One of them alone: name it (`… feature-visualization`).
 *   npm run build && node dist/scripts/docs-pictures.js [quickstart|gallery|feature-visualization]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { loadConfig } from '../src/config';
import { startServer } from '../src/server';
import { galleryScreenshots } from './gallery-screenshots';

const ROOT = path.resolve(__dirname, '..', '..');
const IMAGE = Buffer.from(JSON.stringify(['Image', 'dataset', 'fashion-mnist-demo', 'test-00000.png'])).toString('base64url');

async function main() {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-docs-'));
  const server = await startServer(
    loadConfig({
      ...process.env,
      MODELS_DIR: path.join(ROOT, 'models'),
      DATASETS_DIR: path.join(ROOT, 'datasets'),
      PORT: '0',
      HOST: '127.0.0.1',
      CACHE_DIR: cacheDir,
      LOG_LEVEL: 'warn',
    }),
  );
  const query = async (q: string) => {
    const res = await fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: q }) });
    const body = (await res.json()) as { data?: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const save = async (url: string, name: string) => {
    fs.writeFileSync(path.join(ROOT, 'docs', name), Buffer.from(await (await fetch(server.url + url)).arrayBuffer()));
    console.log(`docs/${name}`);
  };
  for (let i = 0; i < 600; i++) {
    const { jobs } = await query('{ jobs { model state } }');
    if (jobs.some((j: { model: string; state: string }) => j.model === 'fashion-zfnet' && j.state === 'DONE')) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const only = process.argv[2];
  if (!only || only === 'quickstart') await quickstart(query, save);
  if (!only || only === 'feature-visualization') await featureVisualizations(server.url, query);
  if (!only || only === 'gallery') await galleryScreenshots(server.url);
  await server.close();
  fs.rmSync(cacheDir, { recursive: true, force: true });
}

type Query = (q: string) => Promise<any>;

async function quickstart(query: Query, save: (url: string, name: string) => Promise<void>) {
  const one = await query(`{ model(name: "fashion-zfnet") { layer(name: "/conv1/Conv") { filterGridUrl } } }`);
  await save(one.model.layer.filterGridUrl, 'quickstart-filters.png');
  const two = await query(
    `{ model(name: "fashion-zfnet") { layer(name: "/relu5/Relu") { filter(index: 7) { projection(image: { id: "${IMAGE}" }) { imageUrl } } } } }`,
  );
  await save(two.model.layer.filter.projection.imageUrl, 'quickstart-projection.png');
  const three = await query(`{ model(name: "fashion-zfnet") { layer(name: "/relu5/Relu") { topActivationsGrid(dataset: "fashion-mnist-demo", first: 8) } } }`);
  await save(three.model.layer.topActivationsGrid, 'quickstart-top9.png');
  const four = await query(`{ model(name: "fashion-zfnet") { occlusion(image: { id: "${IMAGE}" }, size: 8, stride: 2) { classProbability { imageUrl } } } }`);
  await save(four.model.occlusion.classProbability.imageUrl, 'quickstart-occlusion.png');
  const five = await query(`{ model(name: "fashion-zfnet") { invariance(image: { id: "${IMAGE}" }, transform: ROTATE, steps: 25) { imageUrl } } }`);
  await save(five.model.invariance.imageUrl, 'quickstart-invariance.png');
}

/** relu5's filters 0–7, each its channel mean maximised (512 steps, seed 0), side by side at 4× (nearest). */
async function featureVisualizations(url: string, query: Query) {
  const [scale, gap, count] = [4, 4, 8];
  const tiles: Buffer[] = [];
  let side = 0;
  for (let filter = 0; filter < count; filter++) {
    const fv = await query(
      `{ model(name: "fashion-zfnet") { layer(name: "/relu5/Relu") { filter(index: ${filter}) { featureVisualization(steps: 512, seed: 0) { imageUrl size } } } } }`,
    );
    const { imageUrl, size } = fv.model.layer.filter.featureVisualization;
    const png = Buffer.from(await (await fetch(url + imageUrl)).arrayBuffer());
    side = size * scale;
    tiles.push(await sharp(png).resize(side, side, { kernel: 'nearest' }).png().toBuffer());
  }
  const picture = sharp({ create: { width: count * side + (count - 1) * gap, height: side, channels: 3, background: '#ffffff' } }).composite(
    tiles.map((input, i) => ({ input, left: i * (side + gap), top: 0 })),
  );
  fs.writeFileSync(path.join(ROOT, 'docs', 'feature-visualization.png'), await picture.png({ compressionLevel: 9 }).toBuffer());
  console.log('docs/feature-visualization.png');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
