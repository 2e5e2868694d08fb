/** The GraphQL context: a request's scope of the services (service/scope.ts) and its cancel signal. */
import { createScope, Scope } from './service/scope';
import type { Services } from './service/services';

export interface Context extends Scope {
  /** Fires when the client goes away or the request's time is up (src/http/signals.ts). */
  signal?: AbortSignal;
  /** The request came with a valid API key (src/http/api-keys.ts). */
  apiKey?: boolean;
}

export function createContext(services: Services): Context {
  return createScope(services);
}
