/**
 * The page's only way to the server: the public GraphQL API (POST /graphql), its subscriptions
 * (graphql-ws over a WebSocket at /graphql) and the URLs it hands out (/img, /tensors, /datasets).
 */
import { createClient, Client } from 'graphql-ws/client';
import { decodeNpy } from '../../cache/npy';

export interface GraphQLErrorInfo {
  message: string;
  code?: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

/** A request that failed: every GraphQL error it returned (or one for a transport failure). */
export class ApiError extends Error {
  constructor(readonly errors: GraphQLErrorInfo[]) {
    super(errors.map((e) => (e.code ? `${e.code}: ${e.message}` : e.message)).join('\n'));
    this.name = 'ApiError';
  }

  /** Whether any of the errors has this extensions.code. */
  has(code: string): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

interface RawError {
  message?: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

const toInfo = (e: RawError): GraphQLErrorInfo => ({
  message: e.message ?? 'unknown error',
  code: typeof e.extensions?.code === 'string' ? e.extensions.code : undefined,
  path: e.path,
  extensions: e.extensions,
});

/** Any thrown value as an ApiError, so that the page can always show a message and a code. */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (Array.isArray(err)) return new ApiError(err.map((e) => toInfo(e as RawError))); // graphql-ws hands out error arrays
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError([{ message, code: 'NETWORK_ERROR' }]);
}

export interface Result<T> {
  data: T | null;
  errors: GraphQLErrorInfo[];
}

/** One GraphQL request; returns data and errors side by side (for fields that may fail alone). */
export async function request<T>(query: string, variables: Record<string, unknown> = {}, signal?: AbortSignal): Promise<Result<T>> {
  let res: Response;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
      signal,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new ApiError([{ message: `the server did not answer: ${(err as Error).message}`, code: 'NETWORK_ERROR' }]);
  }
  let body: { data?: T | null; errors?: RawError[] };
  try {
    body = await res.json();
  } catch {
    throw new ApiError([{ message: `HTTP ${res.status} ${res.statusText}: the answer is not JSON`, code: `HTTP_${res.status}` }]);
  }
  const errors = (body.errors ?? []).map(toInfo);
  if (!res.ok && errors.length === 0) errors.push({ message: `HTTP ${res.status} ${res.statusText}`, code: `HTTP_${res.status}` });
  return { data: body.data ?? null, errors };
}

/** One GraphQL request whose every error is a failure. */
export async function query<T>(q: string, variables: Record<string, unknown> = {}, signal?: AbortSignal): Promise<T> {
  const { data, errors } = await request<T>(q, variables, signal);
  if (errors.length || !data) throw new ApiError(errors.length ? errors : [{ message: 'no data in the answer', code: 'NO_DATA' }]);
  return data;
}

/** A Relay connection as the page asks for it. */
export interface Connection<N> {
  nodes: N[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** The selection to ask for a Connection<N> of `fields`. */
export const PAGE = (fields: string) => `nodes { ${fields} } pageInfo { hasNextPage endCursor }`;

/** Every node of a connection, page by page (pages are at most the server's MAX_PAGE_SIZE). */
export async function allPages<N>(fetchPage: (after: string | null) => Promise<Connection<N>>): Promise<N[]> {
  const nodes: N[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await fetchPage(after);
    nodes.push(...page.nodes);
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return nodes;
    after = page.pageInfo.endCursor;
  }
}

let wsClient: Client | undefined;

/** The one WebSocket client, opened on first use (graphql-ws protocol, same host, path /graphql). */
function subscriptions(): Client {
  if (!wsClient) {
    const url = new URL('/graphql', window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    wsClient = createClient({ url: url.href, lazy: true, retryAttempts: 3 });
  }
  return wsClient;
}

/** Subscribes; returns the function that ends the subscription. */
export function subscribe<T>(q: string, variables: Record<string, unknown>, onData: (data: T) => void, onError: (err: ApiError) => void): () => void {
  return subscriptions().subscribe<T>(
    { query: q, variables },
    {
      next: (result) => {
        if (result.errors?.length) onError(new ApiError(result.errors.map((e) => toInfo(e as RawError))));
        else if (result.data) onData(result.data as T);
      },
      error: (err) => onError(asApiError(err)),
      complete: () => {},
    },
  );
}

/** A float32 .npy file (what tensorUrl serves): its shape and values. */
export async function fetchNpy(url: string, signal?: AbortSignal): Promise<{ shape: number[]; data: Float32Array }> {
  const res = await fetch(url, { signal });
  if (!res.ok) throw new ApiError([{ message: `${url}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`, code: `HTTP_${res.status}` }]);
  const bytes = new Uint8Array(await res.arrayBuffer());
  try {
    return decodeNpy(bytes);
  } catch (e) {
    throw new ApiError([{ message: `${url}: ${(e as Error).message}`, code: 'BAD_TENSOR' }]);
  }
}

/** A file as base64 (no data: prefix), for uploadImage. */
export function fileToBase64(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
    reader.onerror = () => reject(reader.error ?? new Error('could not read the file'));
    reader.readAsDataURL(file);
  });
}
