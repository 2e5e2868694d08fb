/**
 * A whole-model atlas (ZF Fig. 2 for every unit): for a model and a dataset with a finished
 * index, every Conv and ReLU unit's top-k projections (cropped to the receptive field) beside
 * the image patches, written as a static site that works opened from disk or from any web
 * server:
 *
 *   DIR/index.html                   the layers
 *   DIR/<layer>/index.html           the layer's units, each with its strongest projection
 *   DIR/<layer>/<unit>.html          the unit's top-k projections and patches
 *   DIR/img/<sha256>.png             every picture, named by its bytes' hash
 *
 * A layer's projections are asked for together, image by image, in runs of up to ATLAS_BATCH
 * items, so that a run holds many units of one image and its forward pass is shared (engine/projections.ts).
 * A ReLU that reads a Conv of the atlas shows the Conv's pictures wherever it is positive
 * (projectsAsConv), and a mid-grey receptive field where it is zero all over the image (a zero
 * seed projects to zero): only its other top activations are projected. Pictures are written at their
 * own size, and the pages draw them larger, pixelated.
 *
 * `buildAtlas` (the mutation of the same name) does it as a job (index/process-jobs.ts): it builds
 * or finds the index, then writes the atlas under ATLAS_DIR/<id>/, served at /atlas/<id>/. The id
 * names the index, k, the layers and the versions of what the pages show, so an unchanged atlas
 * is written once; its folder is written aside and moved in place when complete.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { renderKey } from '../cache/keys';
import { ProcessJobReport } from '../index/process-jobs';
import { defaultIndexLayers, JobInfo } from '../index/jobs';
import { jobEnded, TopRow } from '../index/store';
import { Box, projectionPng } from '../images/maps';
import { cropPixels, imagePixels, Pixels, pixelsPng } from '../images/patches';
import { SourceImage } from '../inference';
import type { Layer, Model } from '../model';
import type { Dataset } from '../registry/datasets';
import { findLayer, layerUnits } from './lookup';
import { LayerKind } from '../onnx/ops';
import { projectsAsConv, projectUnit } from './projection';
import { createScope } from './scope';
import type { Services } from './services';
import { buildIndex, topBox, topImage, topRows } from './top-activations';
import { inputBox } from './views';

/** Bump when the atlas's pages change: atlases are named by it too. */
const ATLAS_VERSION = 'a3';
/** Decoded images kept for their patches: the work of a layer comes image by image, some runs at once. */
const DECODED_IMAGES = 8;

/**
 * Starts (or finds) the atlas of `layers` (default: every Conv and Relu) of `model` over
 * `dataset`, top `k`: the index first (buildIndex: started or found), then the pages. Returns at once.
 */
export async function buildAtlas(services: Services, model: Model, dataset: Dataset, layers: string[] | undefined, k: number): Promise<JobInfo> {
  const index = await buildIndex(services, model, dataset, layers, k); // checks the arguments, starts or finds the index
  const id = `atlas-${renderKey('atlas', model, null, { index: index.id, k, version: ATLAS_VERSION }).split(':')[1].slice(0, 32)}`;
  const { atlasDir, publicUrl } = services.config;
  const dir = path.join(atlasDir, id);
  const spec = { id, kind: 'ATLAS' as const, model: model.name, dataset: dataset.name, layers: index.layers, k, url: `${publicUrl}/atlas/${id}/index.html` };
  const unitsTotal = index.layers.reduce((n, name) => n + layerUnits(model, findLayer(model, name)).length, 0);
  if (fs.existsSync(path.join(dir, 'index.html'))) return services.processJobs.finished(spec, unitsTotal); // written last: the folder is complete
  return services.processJobs.start(spec, async (report, cancelled) => {
    // The index, built here or by another process sharing the store.
    let info = await services.jobs.info(index.id);
    while (info && !jobEnded(info.state)) {
      if (cancelled()) throw new Error('the atlas was cancelled');
      report({ imagesDone: info.imagesDone, imagesTotal: info.imagesTotal, unitsDone: 0, unitsTotal });
      await sleep(200);
      info = await services.jobs.info(index.id);
    }
    if (info?.state !== 'DONE') throw new Error(`its index job ${index.id} is ${info?.state ?? 'gone'}${info?.error ? `: ${info.error}` : ''}`);
    const images = { imagesDone: info.imagesTotal, imagesTotal: info.imagesTotal };
    const aside = path.join(atlasDir, '.tmp', `${id}-${randomUUID().slice(0, 8)}`); // not served: express.static ignores dot folders
    try {
      const onProgress = (p: AtlasProgress) => report({ ...images, unitsDone: p.unitsDone, unitsTotal: p.unitsTotal } satisfies ProcessJobReport);
      await writeAtlas(services, model, dataset, aside, { k, layers: index.layers, cancelled, onProgress });
      try {
        fs.renameSync(aside, dir);
      } catch (e) {
        // Another process sharing ATLAS_DIR finished it first: the same atlas.
        if (!fs.existsSync(path.join(dir, 'index.html'))) throw e;
      }
    } finally {
      fs.rmSync(aside, { recursive: true, force: true });
    }
  });
}

export interface AtlasProgress {
  layer: string;
  layersDone: number;
  layersTotal: number;
  unitsDone: number;
  unitsTotal: number;
}

export interface AtlasLayer {
  name: string;
  units: number;
  seconds: number;
}

/** A picture of the atlas: its file under img/ and its size in pixels. */
interface Picture {
  file: string;
  width: number;
  height: number;
}

/** One top activation in the atlas: its projection's picture and its patch. */
interface Cell {
  row: TopRow;
  image: string;
  label?: string;
  projection: Picture;
  patch: Picture;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** A layer's folder: its name made safe for a path, and its position so that names stay distinct. */
const folderOf = (model: Model, layer: Layer) =>
  `${String(model.layers.indexOf(layer)).padStart(3, '0')}-${layer.name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '')}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa}a{color:#1558b0}img{image-rendering:pixelated;border:1px solid #ccc;margin:1px}
.units{display:flex;flex-wrap:wrap;gap:.5em}.unit{text-align:center}.row{display:flex;gap:4px;align-items:flex-end}figure{margin:0;text-align:center;font-size:11px}</style>
</head><body>${body}</body></html>
`;
}

/** Writes the atlas of `model` over `dataset` to `outDir`; INDEX_NOT_BUILT if some layer has no finished index. */
export async function writeAtlas(
  services: Services,
  model: Model,
  dataset: Dataset,
  outDir: string,
  options: { k?: number; layers?: string[]; onProgress?: (p: AtlasProgress) => void; cancelled?: () => boolean } = {},
): Promise<AtlasLayer[]> {
  const k = options.k ?? 9;
  const layers = (options.layers ?? defaultIndexLayers(model)).map((name) => findLayer(model, name));
  const units = layers.map((layer) => layerUnits(model, layer));
  // Every layer's index is checked before anything is computed.
  for (const u of units) await topRows(services, u[0], dataset);
  const imgDir = path.join(outDir, 'img');
  fs.mkdirSync(imgDir, { recursive: true });
  const written = new Set<string>();
  // Written behind the work (awaited at each layer's end): opening thousands of files would hold the main thread.
  const writing: Promise<void>[] = [];
  const keep = (bytes: Uint8Array): string => {
    const name = `${createHash('sha256').update(bytes).digest('hex')}.png`;
    if (!written.has(name)) {
      const write = fs.promises.writeFile(path.join(imgDir, name), bytes);
      write.catch(() => undefined); // its error is thrown where it is awaited
      writing.push(write);
      written.add(name);
    }
    return name;
  };
  // Units of one layer (and a Conv and its ReLU) often share a top image and its box: one patch
  // each, cut from the image decoded once (the work comes image by image: the last few are kept).
  const patches = new Map<string, Promise<Picture>>();
  const decoded = new Map<string, Promise<Pixels>>();
  const pixelsOf = (image: SourceImage): Promise<Pixels> => {
    let pixels = decoded.get(image.sha256);
    if (!pixels) {
      decoded.set(image.sha256, (pixels = imagePixels(image.bytes)));
      if (decoded.size > DECODED_IMAGES) decoded.delete(decoded.keys().next().value!);
    }
    return pixels;
  };
  const patchOf = (image: SourceImage, box: Box): Promise<Picture> => {
    const key = `${image.sha256}/${box.x},${box.y},${box.width},${box.height}`;
    let made = patches.get(key);
    if (!made) {
      made = pixelsOf(image)
        .then((pixels) => pixelsPng(cropPixels(pixels, box), 1))
        .then((bytes) => ({ file: keep(bytes), width: box.width, height: box.height }));
      patches.set(key, made);
    }
    return made;
  };
  const done = new Map<Layer, Cell[][]>();
  const unitsTotal = units.reduce((n, u) => n + u.length, 0);
  let unitsDone = 0;
  const report: AtlasLayer[] = [];
  for (const [l, layer] of layers.entries()) {
    if (options.cancelled?.()) throw new Error('the atlas was cancelled');
    options.onProgress?.({ layer: layer.name, layersDone: l, layersTotal: layers.length, unitsDone, unitsTotal });
    const start = performance.now();
    // The layer's (unit, top row) pairs, image by image: concurrent requests of one image share its forward pass.
    const tops = await Promise.all(units[l].map((unit) => topRows(services, unit, dataset)));
    const work = units[l].flatMap((unit, u) => tops[u].slice(0, k).map((row, rank) => ({ unit, row, rank })));
    work.sort((a, b) => a.row.image - b.row.image);
    const cells: Cell[][] = units[l].map(() => []);
    const conv = projectsAsConv(model, layer);
    const convCells = conv && done.get(conv);
    let next = 0;
    let made = 0;
    const window = services.config.atlasBatch * 2;
    const workers = Promise.all(
      Array.from({ length: window }, async () => {
        while (next < work.length && !options.cancelled?.()) {
          const { unit, row, rank } = work[next++];
          const image = topImage(services, dataset, row);
          const entry = dataset.images[row.image];
          // The Conv's picture of the same image and position, if the ReLU is positive there.
          const same = row.value > 0 ? convCells?.[unit.index].find((c) => c.row.image === row.image && c.row.y === row.y && c.row.x === row.x) : undefined;
          let projection = same?.projection;
          if (!projection && row.value === 0 && layer.kind === LayerKind.RELU) {
            // Zero all over the image: seed MAX falls on the map's first position and sends zero down.
            const box = inputBox(unit, { y: 0, x: 0 });
            const bytes = await projectionPng({ inside: new Float32Array(0), box: [0, 0, 0, 0] }, model.preprocessing, box, 1);
            projection = { file: keep(bytes), width: box.width, height: box.height };
          }
          if (!projection) {
            // A scope of its own: one for the layer would keep every projection of it (its DataLoader's
            // cache) until the layer ends — 4,096 units × 9 whole-image projections for a classifier's ReLU.
            const p = await projectUnit(createScope(services), unit, image, {}, services.config.atlasBatch);
            const bytes = await projectionPng(p.result, model.preprocessing, p.inputBox, 1);
            projection = { file: keep(bytes), width: p.inputBox.width, height: p.inputBox.height };
          }
          cells[unit.index][rank] = {
            row,
            image: entry.name,
            label: entry.label,
            projection,
            patch: await patchOf(image, await topBox(services, unit, image, row)),
          };
          // The layer's units in proportion to its projections made.
          const part = Math.floor((++made / work.length) * units[l].length);
          options.onProgress?.({ layer: layer.name, layersDone: l, layersTotal: layers.length, unitsDone: unitsDone + part, unitsTotal });
        }
      }),
    );
    // Every picture written (or failed) before the layer's pages, or before the folder is removed.
    await workers.finally(() => Promise.allSettled(writing));
    await Promise.all(writing.splice(0));
    if (options.cancelled?.()) throw new Error('the atlas was cancelled');
    writeLayer(outDir, model, layer, dataset, cells);
    done.set(layer, cells);
    unitsDone += units[l].length;
    report.push({ name: layer.name, units: units[l].length, seconds: (performance.now() - start) / 1000 });
  }
  fs.writeFileSync(
    path.join(outDir, 'index.html'),
    page(
      `${model.name} atlas`,
      `<h1>${esc(model.name)}: top ${k} of every unit over ${esc(dataset.name)}</h1><ol>${layers
        .map((layer, l) => `<li><a href="${folderOf(model, layer)}/index.html">${esc(layer.name)}</a> (${layer.kind}, ${units[l].length} units)</li>`)
        .join('')}</ol>`,
    ),
  );
  options.onProgress?.({ layer: '', layersDone: layers.length, layersTotal: layers.length, unitsDone, unitsTotal });
  return report;
}

/** A picture drawn `side` pixels on its longer side (pixelated: the page's style). */
function img(picture: Picture | undefined, side: number, alt: string): string {
  if (!picture) return '';
  const scale = side / Math.max(picture.width, picture.height, 1);
  return `<img src="../img/${picture.file}" width="${Math.round(picture.width * scale)}" height="${Math.round(picture.height * scale)}" alt="${alt}">`;
}

function writeLayer(outDir: string, model: Model, layer: Layer, dataset: Dataset, cells: Cell[][]): void {
  const dir = path.join(outDir, folderOf(model, layer));
  fs.mkdirSync(dir, { recursive: true });
  const title = `${model.name} · ${layer.name}`;
  const thumbs = cells.map((top, unit) => `<a class="unit" href="${unit}.html">${img(top[0]?.projection, 64, `unit ${unit}`)}<br>${unit}</a>`).join('');
  fs.writeFileSync(
    path.join(dir, 'index.html'),
    page(title, `<p><a href="../index.html">all layers</a></p><h1>${esc(title)}</h1><div class="units">${thumbs}</div>`),
  );
  for (const [unit, top] of cells.entries()) {
    const figures = (pick: (c: Cell) => Picture) =>
      top
        .map(
          (c, rank) =>
            `<figure>${img(pick(c), 96, `rank ${rank + 1}`)}<figcaption>${c.row.value.toFixed(2)}${c.label ? ` ${esc(c.label)}` : ''}</figcaption></figure>`,
        )
        .join('');
    const nav = `<p><a href="../index.html">all layers</a> · <a href="index.html">${esc(layer.name)}</a>${unit > 0 ? ` · <a href="${unit - 1}.html">← ${unit - 1}</a>` : ''}${unit < cells.length - 1 ? ` · <a href="${unit + 1}.html">${unit + 1} →</a>` : ''}</p>`;
    const body = `${nav}<h1>${esc(title)} · unit ${unit}</h1><h2>projections</h2><div class="row">${figures((c) => c.projection)}</div><h2>patches of ${esc(dataset.name)}</h2><div class="row">${figures((c) => c.patch)}</div>`;
    fs.writeFileSync(path.join(dir, `${unit}.html`), page(`${title} · unit ${unit}`, body));
  }
}
