/** What resolvers can reach: the long-lived services, and per request, the DataLoaders. */
import { BlobStore } from './cache/blobs';
import { Config } from './config';
import { Engine } from './engine/engine';
import { ModelRegistry } from './registry/models';

export interface Services {
  config: Config;
  registry: ModelRegistry;
  engine: Engine;
  blobs: BlobStore;
}

export interface Context {
  services: Services;
}

export function createContext(services: Services): Context {
  return { services };
}
