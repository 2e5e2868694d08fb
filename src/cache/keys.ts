/**
 * Cache keys: a computation is named by the sha256 of everything its result depends on, the
 * versions below included, so a key never changes meaning and results can be shared by
 * processes and kept across restarts. Bump a version when what it names gives other bytes.
 */
import { createHash } from 'node:crypto';

/** The numbers a compiled graph gives (src/compiler, src/engine): part of every result's key. */
export const ENGINE_VERSION = 'e1';

/**
 * The pixels modelPixels (images/preprocess.ts) makes of the same bytes: part of every model's
 * identity, so results and indexes made from the old pixels are made again.
 * p2: JPEGs are scaled in the decoder (images/jpeg.ts).
 * p3: embedded ICC profiles are ignored by default (the sidecar's colorProfile).
 */
export const PIXELS_VERSION = 'p3';

/** The layout of cached values (entry.ts, the codecs of inference.ts). */
export const CACHE_FORMAT = 'c2';

/** The PNGs and .npy files made of results (src/images renderers, npy.ts): part of every rendering's key. */
export const RENDER_VERSION = 'r2';

/** What of a model its results depend on: the ONNX file and how images are preprocessed (the sidecar). */
export interface KeyedModel {
  sha256: string;
  preprocessing: unknown;
}

const modelIds = new WeakMap<object, string>();

/**
 * The model's part of every key: its file's sha256 and its preprocessing (a sidecar edit
 * changes every result without changing the ONNX file), and the version of the decoding.
 */
export function modelCacheId(model: KeyedModel): string {
  let id = modelIds.get(model);
  if (!id) {
    id = createHash('sha256')
      .update(model.sha256)
      .update('\0')
      .update(JSON.stringify([model.preprocessing, PIXELS_VERSION]))
      .digest('hex');
    modelIds.set(model, id);
  }
  return id;
}

/**
 * The key of a computed result (inference.ts): `<kind>:<sha256>` over the kind, ENGINE_VERSION,
 * CACHE_FORMAT, the model, the image and the computation's own parts (layer, unit, method,
 * seed, options…), given in a fixed order.
 */
export function resultKey(kind: string, model: KeyedModel, imageSha256: string, parts: Record<string, unknown>): string {
  return hashedKey(kind, [ENGINE_VERSION, CACHE_FORMAT], model, imageSha256, parts);
}

/**
 * The key of a rendering of results (a blob: PNG or .npy; service/views.ts makes them all): the
 * same rule, with RENDER_VERSION too. `model` and `imageSha256` are null where it depends on neither.
 */
export function renderKey(kind: string, model: KeyedModel | null, imageSha256: string | null, parts: Record<string, unknown>): string {
  return hashedKey(kind, [ENGINE_VERSION, CACHE_FORMAT, RENDER_VERSION], model, imageSha256, parts);
}

function hashedKey(kind: string, versions: string[], model: KeyedModel | null, imageSha256: string | null, parts: Record<string, unknown>): string {
  const canonical = JSON.stringify([kind, ...versions, model && modelCacheId(model), imageSha256, sortKeys(parts)]);
  return `${kind}:${createHash('sha256').update(canonical).digest('hex')}`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
