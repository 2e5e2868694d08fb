/**
 * Results as the API shows them: boxes in input and in original pixels, and the files made of
 * results (PNG pictures, .npy tensors, the top-k grid of ZF Fig. 2), each made once and kept as
 * a blob (cache/blobs.ts): projections' on first fetch, from the recipe in their URL
 * (service/renders.ts), the others when their URL is asked for. Every blob is named here, by one rule: renderKey
 * (cache/keys.ts) over the kind, the versions, the model, the image and whatever else its bytes
 * depend on.
 */
import sharp from 'sharp';
import { BlobKind } from '../cache/blobs';
import { renderKey } from '../cache/keys';
import { encodeNpy } from '../cache/npy';
import { seedShape } from '../compiler/units';
import { OcclusionResult } from '../engine/occlusion';
import { ProjectionResult } from '../engine/projections';
import { featureVisualizationPng } from '../images/feature-visualization';
import { hasKernelImages, kernelGridPng, kernelPng } from '../images/filters';
import { Box, featureGridPng, mapPng, projectionPixels, projectionPng } from '../images/maps';
import { occlusionPng } from '../images/occlusion';
import { patch, patchPng } from '../images/patches';
import { PlotPanel, plotPng } from '../images/plot';
import { toOriginal } from '../images/placement';
import { inspectImage, modelPixels } from '../images/preprocess';
import { topGridPng } from '../images/topgrid';
import { SourceImage } from '../inference';
import type { Layer, Model, Unit } from '../model';
import { unitBox } from '../onnx/ops';
import type { Dataset } from '../registry/datasets';
import type { LayerWeights } from '../registry/weights';
import type { FillMode, LrnMode, Method, SeedMode } from '../vocabulary';
import type { FeatureVisualization } from './feature-visualization';
import type { Services } from './services';

export interface Position {
  y: number;
  x: number;
}

/** A unit's projection on an image (service/projection.ts), as asked and as computed. */
export interface Projection {
  unit: Unit;
  image: SourceImage;
  method: Method;
  seed: SeedMode;
  lrn: LrnMode;
  result: ProjectionResult;
  /** The seed's receptive field in the model input's pixels (FULL_MAP: the whole map's), cut to the input. */
  inputBox: Box;
}

/** Occlusion sensitivity of an image (service/occlusion.ts), as asked and as computed. */
export interface Occlusion {
  model: Model;
  layer: Layer;
  image: SourceImage;
  result: OcclusionResult;
  size: number;
  stride: number;
  fill: FillMode;
  /** The preprocessed value put in each input channel. */
  fillValues: number[];
}

/** One of an occlusion's maps: a [height, width] grid, drawn over `range` (or in class colours). */
export interface OcclusionMap {
  occlusion: Occlusion;
  name: 'activation' | 'probability' | 'top-class';
  values: Float32Array;
  min: number;
  max: number;
  range: { min: number; max: number } | 'classes';
}

// ---- boxes ------------------------------------------------------------------------------------

/** The receptive field of the unit at `position` of the map in the model input's pixels, cut to the input. */
export function inputBox({ model, layer }: Unit, position: Position): Box {
  return unitBox(layer.receptiveField, position.y, position.x, [model.inputShape[1], model.inputShape[2]]);
}

/** A projection's input box: its seed's; for FULL_MAP, the whole map's, from its first unit to its last. */
export function projectionBox(unit: Unit, position: Position, seed: SeedMode): Box {
  if (seed !== 'FULL_MAP') return inputBox(unit, position);
  const [, Ht, Wt] = seedShape(unit.layer.outputShape);
  const first = inputBox(unit, { y: 0, x: 0 });
  const last = inputBox(unit, { y: Ht - 1, x: Wt - 1 });
  return { x: first.x, y: first.y, width: last.x + last.width - first.x, height: last.y + last.height - first.y };
}

/** A box in the model input's pixels as a box of the original image (through the model's resize: stretch, centre crop or letterbox), clipped. */
export async function originalBox(services: Services, model: Model, image: SourceImage, inputBox: Box): Promise<Box> {
  return toOriginal(inputBox, await inspectImage(image.bytes, services.config), model.preprocessing);
}

// ---- blobs ------------------------------------------------------------------------------------

/** The URL of the blob that `produce` makes, named by renderKey (its PNG and its .npy are told apart by `kind`). */
function blob(
  services: Services,
  kind: BlobKind,
  key: { name: string; model: Model | null; image: SourceImage | null; parts: Record<string, unknown> },
  produce: () => Promise<Uint8Array> | Uint8Array,
): Promise<string> {
  return services.blobs.cached(renderKey(key.name, key.model, key.image?.sha256 ?? null, key.parts), kind, produce);
}

/** The projection's parts of its blobs' keys: the unit, how it was projected and where the seed is. */
function projectionKey(p: Projection) {
  const { model, layer, index } = p.unit;
  const { position } = p.result;
  return {
    model,
    image: p.image,
    parts: { layer: layer.name, channel: index, method: p.method, seed: p.seed, lrn: p.lrn, position: [position.y, position.x] },
  };
}

/**
 * How to make a projection's picture or tensor again from nothing but its URL (service/renders.ts):
 * the model by name, the image (an upload by hash, or a dataset's by name), the unit and how it
 * was projected. The URL's hash (the renderKey) pins the model's and image's versions.
 */
export interface ProjectionRecipe {
  model: string;
  image: string | [dataset: string, name: string];
  layer: string;
  channel: number;
  method: Method;
  seed: SeedMode;
  lrn: LrnMode;
  position: [number, number];
  crop?: boolean;
}

/** The key (renderKey) a projection's PNG (with `crop`) or .npy (without) is named by. */
export function projectionRenderKey(p: Projection, kind: BlobKind, crop?: boolean): string {
  const key = projectionKey(p);
  return renderKey('projection', key.model, key.image.sha256, kind === 'png' ? { ...key.parts, crop } : key.parts);
}

/** The bytes of a projection's PNG (at the model input size, 0 at mid-grey, `crop`ped to the input box) or .npy. */
export function renderProjection(p: Projection, kind: BlobKind, crop?: boolean): Promise<Uint8Array> | Uint8Array {
  const { model } = p.unit;
  if (kind === 'npy') return encodeNpy(p.result.projection, model.inputShape);
  return projectionPng(p.result, model.preprocessing, crop ? p.inputBox : undefined);
}

/** The URL of a projection's blob, handed out at once with its recipe: the bytes are made when first fetched. */
function projectionUrl(services: Services, p: Projection, kind: BlobKind, crop?: boolean): string {
  const { unit, image, result } = p;
  const recipe: ProjectionRecipe = {
    model: unit.model.name,
    image: image.dataset && image.name ? [image.dataset, image.name] : image.sha256,
    layer: unit.layer.name,
    channel: unit.index,
    method: p.method,
    seed: p.seed,
    lrn: p.lrn,
    position: [result.position.y, result.position.x],
    crop,
  };
  const key = projectionRenderKey(p, kind, crop);
  return services.blobs.url(kind, key.slice(key.indexOf(':') + 1), recipe);
}

/** PNG at the model input size: 0 at mid-grey, scaled by the largest |value|; `crop` cuts it to the input box. */
export function projectionImageUrl(services: Services, p: Projection, crop: boolean): string {
  return projectionUrl(services, p, 'png', crop);
}

/** Raw float32 [C, H, W] as .npy, with respect to the preprocessed input tensor. */
export function projectionTensorUrl(services: Services, p: Projection): string {
  return projectionUrl(services, p, 'npy');
}

/** PNG of a kernel that sees the image (ZF Fig. 6), or null for the layer's other kernels. */
export function kernelImageUrl(services: Services, { model, layer, index }: Unit, weights: LayerWeights): Promise<string> | null {
  if (!hasKernelImages(weights)) return null;
  return blob(services, 'png', { name: 'kernel', model, image: null, parts: { layer: layer.name, channel: index } }, () => kernelPng(model, weights, index));
}

/** All of a layer's kernels in one PNG, for convs that read the image; else null. */
export function kernelGridUrl(services: Services, model: Model, layer: Layer, weights: LayerWeights): Promise<string> | null {
  if (!hasKernelImages(weights)) return null;
  return blob(services, 'png', { name: 'kernel-grid', model, image: null, parts: { layer: layer.name } }, () => kernelGridPng(model, weights));
}

/** PNG of one channel's map [H, W], grey from min(0, min) to max. */
export function activationMapUrl(services: Services, { model, layer, index }: Unit, image: SourceImage, map: Float32Array, [H, W]: number[]): Promise<string> {
  return blob(services, 'png', { name: 'activation-map', model, image, parts: { layer: layer.name, channel: index } }, () =>
    mapPng(Float32Array.from(map), H, W),
  );
}

/** A layer's feature maps for an image: a PNG grid of every channel and the raw tensor as .npy. */
export async function featureMapsUrls(
  services: Services,
  model: Model,
  layer: Layer,
  image: SourceImage,
  data: Float32Array,
): Promise<{ gridUrl: string; tensorUrl: string }> {
  const key = { name: 'feature-maps', model, image, parts: { layer: layer.name } };
  const [gridUrl, tensorUrl] = await Promise.all([
    blob(services, 'png', key, () => featureGridPng(data, seedShape(layer.outputShape))),
    blob(services, 'npy', key, () => encodeNpy(data, layer.outputShape)),
  ]);
  return { gridUrl, tensorUrl };
}

function occlusionMapKey({ occlusion: o, name }: OcclusionMap) {
  return {
    name: 'occlusion-map',
    model: o.model,
    image: o.image,
    parts: { layer: o.layer.name, size: o.size, stride: o.stride, fill: o.fillValues, target: o.result.targetClass, map: name },
  };
}

/** PNG: the grid upsampled to the model's input size (nearest occluder centre), blended 50 % over the image. */
export function occlusionMapImageUrl(services: Services, map: OcclusionMap): Promise<string> {
  const { model, image, result, size, stride } = map.occlusion;
  return blob(services, 'png', occlusionMapKey(map), async () => {
    const pixels = await modelPixels(image.bytes, model.preprocessing, services.config);
    return occlusionPng(pixels, model.preprocessing, { values: map.values, width: result.width, height: result.height, size, stride }, map.range);
  });
}

/** Raw float32 [height, width] grid as .npy. */
export function occlusionMapTensorUrl(services: Services, map: OcclusionMap): Promise<string> {
  const { result } = map.occlusion;
  return blob(services, 'npy', occlusionMapKey(map), () => encodeNpy(map.values, [result.height, result.width]));
}

/** PNG of a box of an original image (small ones upscaled). */
export function patchUrl(services: Services, image: SourceImage, box: Box): Promise<string> {
  return blob(services, 'png', { name: 'patch', model: null, image, parts: { box: [box.x, box.y, box.width, box.height] } }, () => patchPng(image.bytes, box));
}

/** One top activation of a filter in the grid: its projection and the box of the original image the unit saw. */
export interface TopGridEntry {
  projection: Projection;
  box: Box;
}

/**
 * ZF Fig. 2 for some filters of a layer as one PNG: for each, its top-k projections (cropped to
 * the receptive field) beside the image patches. `indexId` names the index the entries come from.
 */
export function topGridUrl(
  services: Services,
  grid: { model: Model; layer: Layer; dataset: Dataset; indexId: string | undefined; units: Unit[]; k: number },
  entries: () => Promise<TopGridEntry[][]>,
): Promise<string> {
  const { model, layer, dataset, indexId, units, k } = grid;
  const parts = { layer: layer.name, dataset: dataset.fingerprint, index: indexId ?? null, units: units.map((u) => u.index), k };
  return blob(services, 'png', { name: 'top-grid', model, image: null, parts }, async () => {
    const tiles = (await entries()).map((filter) => {
      const cells = filter.map(({ projection: p, box }) => {
        const { pixels, width, height, channels } = projectionPixels(p.result, model.preprocessing, p.inputBox);
        return {
          projection: { image: sharp(pixels, { raw: { width, height, channels: channels as 1 | 3 } }), width, height },
          patch: { image: patch(p.image.bytes, box), width: box.width, height: box.height },
        };
      });
      return { projections: cells.map((c) => c.projection), patches: cells.map((c) => c.patch) };
    });
    return topGridPng(tiles, k);
  });
}

/** PNG of line plots (plotPng) of a computation on a model and an image, named by what it was computed from (`parts`). */
export function plotUrl(
  services: Services,
  key: { name: string; model: Model; image: SourceImage; parts: Record<string, unknown> },
  plot: { x: number[]; xLabel: string; panels: PlotPanel[] },
): Promise<string> {
  return blob(services, 'png', key, () => plotPng(plot.x, plot.xLabel, plot.panels));
}

function featureVisualizationKey({ unit, options }: FeatureVisualization) {
  const parts = { layer: unit.layer.name, channel: unit.index, ...options, position: options.position ? [options.position.y, options.position.x] : null };
  return { name: 'feature-visualization', model: unit.model, image: null, parts };
}

/** PNG of a feature visualization: its images side by side, each at its own size, in RGB (or grey). */
export function featureVisualizationImageUrl(services: Services, fv: FeatureVisualization): Promise<string> {
  const { pixels, channels, size } = fv.result;
  return blob(services, 'png', featureVisualizationKey(fv), () => featureVisualizationPng(pixels, fv.options.batch, channels, size));
}

/** The images as float32 [batch, C, size, size] in [0, 1] (.npy). */
export function featureVisualizationTensorUrl(services: Services, fv: FeatureVisualization): Promise<string> {
  const { pixels, channels, size } = fv.result;
  return blob(services, 'npy', featureVisualizationKey(fv), () => encodeNpy(pixels, [fv.options.batch, channels, size, size]));
}
