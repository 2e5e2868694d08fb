/**
 * One request's view of the services: the services themselves, and DataLoaders through which,
 * within the request, the same activation or projection is computed once. Every function of
 * the service layer that computes takes a scope.
 */
import DataLoader from 'dataloader';
import { ProjectionResult } from '../engine/projections';
import { ProjectionOptions, SourceImage } from '../inference';
import type { Layer, Model } from '../model';
import type { Services } from './services';

interface ActivationKey {
  model: Model;
  layer: Layer;
  image: SourceImage;
}

interface ProjectionKey extends ActivationKey {
  options: ProjectionOptions;
}

export interface Scope {
  services: Services;
  activations: DataLoader<ActivationKey, Float32Array, string>;
  projections: DataLoader<ProjectionKey, ProjectionResult, string>;
}

const keyOf = (k: ActivationKey) => `${k.model.sha256}/${k.layer.name}/${k.image.sha256}`;

export function createScope(services: Services): Scope {
  const { inference } = services;
  // Batch functions fan out to the engine, whose micro-batcher merges them (and other
  // requests' work) into ORT runs; DataLoader's part is deduplication within the request.
  return {
    services,
    activations: new DataLoader(async (keys) => settle(keys.map((k) => inference.activation(k.model, k.layer, k.image))), {
      cacheKeyFn: keyOf,
    }),
    projections: new DataLoader(async (keys) => settle(keys.map((k) => inference.projection(k.model, k.layer, k.image, k.options))), {
      cacheKeyFn: (k) => `${keyOf(k)}/${JSON.stringify(k.options)}`,
    }),
  };
}

/** DataLoader wants per-key errors as values, not one rejected promise. */
async function settle<T>(promises: Promise<T>[]): Promise<(T | Error)[]> {
  const results = await Promise.allSettled(promises);
  return results.map((r) => (r.status === 'fulfilled' ? r.value : r.reason instanceof Error ? r.reason : new Error(String(r.reason))));
}
