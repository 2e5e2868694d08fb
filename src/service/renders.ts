/**
 * The bytes behind a blob URL (/img, /tensors) that carries a recipe (views.ts ProjectionRecipe)
 * and whose bytes are not kept: made now through the same service functions a query uses — the
 * result from the cache or computed again, then rendered — so they are the bytes a render at
 * query time would give, whenever and wherever the URL is fetched.
 */
import { BlobKind } from '../cache/blobs';
import { notFound } from '../errors';
import { SourceImage } from '../inference';
import { LRN_MODES, METHODS, SEED_MODES } from '../vocabulary';
import { datasetImage, uploadedImage } from './images';
import { findLayer, findModel, findUnit } from './lookup';
import { projectUnit } from './projection';
import { createScope } from './scope';
import type { Services } from './services';
import { ProjectionRecipe, projectionRenderKey, renderProjection } from './views';

/**
 * The bytes of the blob named `hash`, made from its recipe (the URL's `?r=`, its signature
 * already checked: BlobStore.recipe) and kept. NOT_FOUND when the recipe no longer gives the
 * bytes its name says (the model or image changed, or the upload is gone).
 */
export async function renderBlob(services: Services, kind: BlobKind, hash: string, recipe: unknown): Promise<Uint8Array> {
  if (!recipe || typeof recipe !== 'object') throw notFound("this URL's recipe is not one convscope made");
  // Single flight: concurrent first fetches of one URL render once.
  return services.cache.singleFlight(`render:${hash}.${kind}`, async () => {
    const bytes = await makeProjection(services, recipe as ProjectionRecipe, kind, hash);
    await services.blobs.putAt(kind, hash, bytes);
    return bytes;
  });
}

async function makeProjection(services: Services, r: ProjectionRecipe, kind: BlobKind, hash: string): Promise<Uint8Array> {
  const model = findModel(services, String(r.model));
  const unit = findUnit(model, findLayer(model, String(r.layer)), r.channel);
  const image: SourceImage = Array.isArray(r.image) ? datasetImage(services, String(r.image[0]), String(r.image[1])) : uploadedImage(services, String(r.image));
  if (!(Object.hasOwn(METHODS, r.method) && Object.hasOwn(SEED_MODES, r.seed) && Object.hasOwn(LRN_MODES, r.lrn)))
    throw notFound("this URL's recipe is not one convscope made");
  const position = r.seed === 'POSITION' && Array.isArray(r.position) ? { y: r.position[0], x: r.position[1] } : undefined;
  const p = await projectUnit(createScope(services), unit, image, { method: r.method, seed: r.seed, lrn: r.lrn, position });
  // The name fixes the bytes: a recipe that gives another key (edited, or the model or image changed since) is not served.
  if (projectionRenderKey(p, kind, r.crop) !== `projection:${hash}`) {
    throw notFound(`this URL's recipe no longer gives ${hash.slice(0, 12)}… (the model or image has changed): query the field again`);
  }
  return renderProjection(p, kind, r.crop);
}
