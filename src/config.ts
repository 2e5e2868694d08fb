import os from 'node:os';
import path from 'node:path';

/** Every setting comes from the environment; defaults make a fresh clone work. */
export interface Config {
  host: string;
  port: number;
  modelsDir: string;
  datasetsDir: string;
  cacheDir: string;
  /** Where buildAtlas writes atlases, one folder each, served at /atlas/ (ATLAS_DIR, default CACHE_DIR/atlas). */
  atlasDir: string;
  logLevel: string;
  /** cpu (onnxruntime-node, default), wasm (onnxruntime-web), cuda, webgpu. */
  backend: Backend;
  /** Threads per ORT session (intra-op). */
  threads: number;
  /**
   * Worker threads that decode index jobs' images (DECODE_THREADS; default: the cores left over
   * by the runtime's threads and the main thread; 0 = on the main thread).
   */
  decodeThreads: number;
  /** Sessions run in a worker thread, leaving the main thread free (ORT_WORKER, default on). */
  ortWorker: boolean;
  /** Largest batch the micro-batcher sends to one ORT run. */
  maxBatch: number;
  /**
   * Largest batch of an atlas's projections (ATLAS_BATCH, default 64): larger than MAX_BATCH, so
   * that a run holds every unit of an image more often and its forward pass is computed once.
   */
  atlasBatch: number;
  /** How long the micro-batcher waits for more work before a run, in ms. */
  batchWindowMs: number;
  /** An idle engine starts a batch at once instead of waiting the window (BATCH_IDLE_START, default on). */
  batchIdleStart: boolean;
  /** Bytes of preprocessed input tensors kept in memory (PREPARED_MEMORY_MB). Results and blobs live in the cache (CACHE_MEMORY_MB). */
  preparedMemoryBytes: number;
  /**
   * Memory the loaded ORT sessions may hold (SESSION_MEMORY_MB, default 2048; decimals allowed),
   * estimated at 2.5× each compiled graph's bytes (its copy of the weights it needs and their
   * pre-packed forms; a graph through AlexNet's classifier is about 250 MB); past the bound the
   * least recently used idle sessions are released and loaded again when next needed.
   */
  sessionMemoryBytes: number;
  /** Bytes of compiled graphs kept under CACHE_DIR/graphs (GRAPH_CACHE_MB, default 4096; 0 = none): loaded without compiling after a restart. */
  graphCacheBytes: number;
  /** A model's sessions share one copy of its weights, mapped from a file, without pre-packing (SHARED_WEIGHTS, default off: dense layers run slower without pre-packing, and a Gemm of one row then rounds otherwise than in a batch; cpu backend with the graph cache only). */
  sharedWeights: boolean;
  /** Seconds between rescans of MODELS_DIR for added, replaced or removed models (MODELS_RESCAN_S, default 2; 0 = never). */
  modelsRescanSeconds: number;
  /** Seconds a replaced or removed model's weights file is kept for work still running on it (RETIRED_WEIGHTS_S, default 600). */
  retiredWeightsSeconds: number;
  /** Seconds after which a session nobody asked for is released (SESSION_IDLE_S, default 600; 0 = never). */
  sessionIdleSeconds: number;
  /** Largest accepted HTTP JSON body (inline base64 images live there). */
  bodyLimitBytes: number;
  /** Largest accepted image, in bytes after base64 decoding, and in pixels. */
  maxImageBytes: number;
  maxImagePixels: number;
  /** Largest `first` on any connection. */
  maxPageSize: number;
  /** Most occluder positions (grid width × height) one Model.occlusion may run. */
  maxOcclusionPositions: number;
  /** Most dataset images one Model.compare runs both models over (MAX_COMPARE_IMAGES, default 1000). */
  maxCompareImages: number;
  /** Most units (channels) of the compared layer in Model.compare (MAX_COMPARE_UNITS, default 1024): the correlations are units² × images multiply-adds. */
  maxCompareUnits: number;
  /** Most steps of one Model.invariance (MAX_INVARIANCE_STEPS, default 64): one forward pass each. */
  maxInvarianceSteps: number;
  /**
   * Feature visualization (Filter.featureVisualization) runs while its query waits: its steps
   * (FEATVIS_MAX_STEPS, default 2048), image side in pixels (FEATVIS_MAX_SIZE, default 512) and
   * batch (FEATVIS_MAX_BATCH, default 8) are bounded; beyond them BAD_USER_INPUT. Its query cost
   * (4 per step and image) and REQUEST_TIMEOUT_MS bound it too.
   */
  featvisMaxSteps: number;
  featvisMaxSize: number;
  featvisMaxBatch: number;
  /** Feature visualization jobs running at once (FEATVIS_MAX_JOBS, default 2); one more is OVERLOADED until one ends. */
  featvisMaxJobs: number;
  /** Least time between two checkpoints of an index job (each is a database transaction). */
  indexCheckpointMs: number;
  /** How long an index job's lease lasts without a checkpoint, ms (INDEX_LEASE_S, default 30): how soon another process sharing the store takes over a job whose process died. */
  indexLeaseMs: number;
  /** PostgreSQL holding the index store, shared by several processes (DATABASE_URL, e.g. postgres://user@host/db; unset = SQLite in CACHE_DIR). */
  databaseUrl?: string;
  /**
   * With REDIS_URL and DATABASE_URL, index jobs are queued in chunks (src/index/queue.ts) that
   * `convscope worker` processes take. INDEX_IN_API (default on) makes API processes (and
   * `convscope index`) take chunks too, so that replicas without workers still build indexes;
   * off, they only queue, read and stream progress.
   */
  indexInApi: boolean;
  /** Images per queued chunk (INDEX_CHUNK_IMAGES, default 64): the unit of work a worker takes, and loses if it dies. */
  indexChunkImages: number;
  /** Chunks one process works on at once (INDEX_WORKER_CHUNKS, default 2: one decoding while one runs). */
  indexWorkerChunks: number;
  /** Times a queued chunk may be taken without finishing before it fails its job (INDEX_CHUNK_MAX_STARTS, default 5): a chunk that crashes its workers. */
  indexChunkMaxStarts: number;

  // ---- hardening: query limits, backpressure, time limits (src/http/query-limits.ts, overload.ts, signals.ts) ----
  /**
   * Largest query cost (MAX_QUERY_COST, default 10000). A field costs 1; inference fields cost
   * more (resolvers/complexity.ts: a projection 100, an activation or featureMaps 50); a
   * connection multiplies its selection by `first` (default 20). Over it: QUERY_TOO_COMPLEX
   * (HTTP 400) with `extensions.cost` and `extensions.maxCost`. Introspection is counted too.
   */
  maxQueryCost: number;
  /** Deepest field nesting (MAX_QUERY_DEPTH, default 16; fragments add no depth; __schema is exempt). Over it: QUERY_TOO_COMPLEX. */
  maxQueryDepth: number;
  /** Most aliases in one document (MAX_ALIASES, default 32). Over it: QUERY_TOO_COMPLEX. */
  maxAliases: number;
  /** Most directives in one document (MAX_DIRECTIVES, default 50). Over it: QUERY_TOO_COMPLEX. */
  maxDirectives: number;
  /** Most lexical tokens in one document (MAX_QUERY_TOKENS, default 5000): bounds parsing. Over it: QUERY_TOO_COMPLEX. */
  maxQueryTokens: number;
  /**
   * Inference items waiting in the micro-batchers, all compiled graphs together (MAX_QUEUED_ITEMS,
   * default 256). A field that would queue more fails at once with OVERLOADED and
   * `extensions.retryAfterMs`; a response with no data then gets HTTP 503 and Retry-After.
   */
  maxQueuedItems: number;
  /**
   * /graphql requests handled at once (MAX_INFLIGHT_REQUESTS, default 64). One more is refused at
   * once, before its body is read: HTTP 503, OVERLOADED, `retryAfterMs`, Retry-After. This bounds
   * what waits before the inference queue (body parsing, image decoding, the event loop, which
   * onnxruntime-node's runs hold).
   */
  maxInflightRequests: number;
  /** Time limit of one request, ms (REQUEST_TIMEOUT_MS, default 30000; 0 = none). Inference still waiting then is dropped: TIMEOUT. */
  requestTimeoutMs: number;
  /** On SIGTERM/SIGINT, how long in-flight requests may take to finish, ms (SHUTDOWN_TIMEOUT_MS, default 10000). */
  shutdownTimeoutMs: number;
  /** Largest model file read from MODELS_DIR (MAX_MODEL_MB, default 2000); a larger one goes to modelErrors unread. */
  maxModelBytes: number;
  /** Largest model input C·H·W (MAX_MODEL_INPUT_ELEMENTS, default 4194304 = 4·1024·1024); a larger one goes to modelErrors. */
  maxModelInputElements: number;

  // ---- caching (src/cache/, docs/architecture.md): memory LRU → disk → Redis ----
  /** Bytes of the cache's memory tier (CACHE_MEMORY_MB, default 256; decimals allowed; 0 = no memory tier). */
  cacheMemoryBytes: number;
  /** Bytes of uploaded images kept under CACHE_DIR/uploads (UPLOADS_MB, default 1024); least recently used go first. */
  uploadsBytes: number;
  /** Bytes of the cache's disk tier under CACHE_DIR/store (CACHE_DISK_MB, default 2048; 0 = no disk tier). LRU by access time. */
  cacheDiskBytes: number;
  /** Redis shared by several server processes (REDIS_URL, e.g. redis://127.0.0.1:6379; unset = no Redis tier). */
  redisUrl?: string;
  /** Time to live of cache entries in Redis, s (CACHE_REDIS_TTL_S, default 604800 = 7 days; 0 = none: rely on Redis maxmemory). */
  redisTtlS: number;
  /** Longest wait for one Redis call before it counts as a miss, ms (REDIS_TIMEOUT_MS, default 1000). */
  redisTimeoutMs: number;
  /** Whole-response cache for operations whose @cacheControl hints allow it (RESPONSE_CACHE, default on; 0/off/false = off). */
  responseCache: boolean;

  // ---- use from other origins and access control (src/http/cors.ts, api-keys.ts) ----
  /**
   * Origins whose pages may call the API (CORS_ORIGINS: a comma-separated list of origins such as
   * `https://dash.example.com`, `*` for any, or `none`; default `*`). Applies to every route
   * (/graphql, /img, /tensors, /datasets, /embed.js) and to WebSocket subscriptions; the
   * server's own origin is always allowed.
   */
  corsOrigins: string[] | '*';
  /**
   * The server's address as clients reach it (PUBLIC_URL, e.g. `https://example.com/convscope`
   * behind a proxy that strips `/convscope`): every URL field of the API starts with it. Unset:
   * URLs are paths (`/img/…`) relative to the server.
   */
  publicUrl: string;
  /** Keys accepted in the X-API-Key header (API_KEYS, comma-separated; unset = no keys: everything is open). With keys, mutations need one. */
  apiKeys: string[];
  /** With API_KEYS, queries and subscriptions need a key too (API_KEYS_FOR_READS, default off). */
  apiKeysForReads: boolean;
  /** Requests per minute one key may make (API_KEY_RATE_LIMIT, default 0 = no limit); over it: OVERLOADED, HTTP 429, Retry-After. */
  apiKeyRateLimit: number;
  /**
   * The secret that signs the recipes of projection URLs (URL_SIGNING_KEY, at least 32
   * characters; cache/blobs.ts): /img and /tensors make bytes only from a recipe this server (or
   * a replica with the same key) handed out. Unset: a random key kept in CACHE_DIR/url-signing.key,
   * so a server's URLs outlive its restarts; replicas sharing a cache (REDIS_URL) need the same one
   * (the server warns at start without it).
   */
  urlSigningKey?: string;
}

export type Backend = 'cpu' | 'wasm' | 'cuda' | 'webgpu';
const BACKENDS: Backend[] = ['cpu', 'wasm', 'cuda', 'webgpu'];

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be an integer ≥ ${min}, got "${raw}"`);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const root = path.resolve(__dirname, '..', '..');
  const dir = (name: string, fallback: string) => path.resolve(env[name] || path.join(root, fallback));
  const backend = (env.CONVSCOPE_BACKEND || 'cpu') as Backend;
  if (!BACKENDS.includes(backend)) {
    throw new Error(`CONVSCOPE_BACKEND must be one of ${BACKENDS.join(', ')}, got "${backend}"`);
  }
  return {
    host: env.HOST || '0.0.0.0',
    port: int(env, 'PORT', 4000),
    modelsDir: dir('MODELS_DIR', 'models'),
    datasetsDir: dir('DATASETS_DIR', 'datasets'),
    cacheDir: dir('CACHE_DIR', '.cache'),
    atlasDir: path.resolve(env.ATLAS_DIR || path.join(dir('CACHE_DIR', '.cache'), 'atlas')),
    logLevel: env.LOG_LEVEL || 'info',
    backend,
    threads: int(env, 'ORT_THREADS', 2, 1),
    decodeThreads: int(env, 'DECODE_THREADS', Math.max(0, os.availableParallelism() - int(env, 'ORT_THREADS', 2, 1) - 1)),
    ortWorker: !/^(0|off|false|no)$/i.test(env.ORT_WORKER ?? ''),
    maxBatch: int(env, 'MAX_BATCH', 16, 1),
    atlasBatch: int(env, 'ATLAS_BATCH', 64, 1),
    batchWindowMs: int(env, 'BATCH_WINDOW_MS', 3),
    batchIdleStart: !/^(0|off|false|no)$/i.test(env.BATCH_IDLE_START ?? ''),
    preparedMemoryBytes: int(env, 'PREPARED_MEMORY_MB', 64) * 1024 * 1024,
    sessionMemoryBytes: megabytes(env, 'SESSION_MEMORY_MB', 2048),
    sessionIdleSeconds: seconds(env, 'SESSION_IDLE_S', 600),
    modelsRescanSeconds: seconds(env, 'MODELS_RESCAN_S', 2),
    retiredWeightsSeconds: seconds(env, 'RETIRED_WEIGHTS_S', 600),
    graphCacheBytes: megabytes(env, 'GRAPH_CACHE_MB', 4096),
    sharedWeights: /^(1|on|true|yes)$/i.test(env.SHARED_WEIGHTS ?? ''),
    bodyLimitBytes: int(env, 'BODY_LIMIT_MB', 16, 1) * 1024 * 1024,
    maxImageBytes: int(env, 'MAX_IMAGE_MB', 10, 1) * 1024 * 1024,
    maxImagePixels: int(env, 'MAX_IMAGE_PIXELS', 40_000_000, 1),
    maxPageSize: int(env, 'MAX_PAGE_SIZE', 100, 1),
    maxOcclusionPositions: int(env, 'MAX_OCCLUSION_POSITIONS', 4096, 1),
    maxCompareImages: int(env, 'MAX_COMPARE_IMAGES', 1000, 2),
    maxCompareUnits: int(env, 'MAX_COMPARE_UNITS', 1024, 1),
    maxInvarianceSteps: int(env, 'MAX_INVARIANCE_STEPS', 64, 2),
    featvisMaxSteps: int(env, 'FEATVIS_MAX_STEPS', 2048, 1),
    featvisMaxSize: int(env, 'FEATVIS_MAX_SIZE', 512, 8),
    featvisMaxBatch: int(env, 'FEATVIS_MAX_BATCH', 8, 1),
    featvisMaxJobs: int(env, 'FEATVIS_MAX_JOBS', 2, 1),
    indexCheckpointMs: int(env, 'INDEX_CHECKPOINT_MS', 2000),
    indexLeaseMs: int(env, 'INDEX_LEASE_S', 30, 1) * 1000,
    databaseUrl: env.DATABASE_URL || undefined,
    indexInApi: !/^(0|off|false|no)$/i.test(env.INDEX_IN_API ?? ''),
    indexChunkImages: int(env, 'INDEX_CHUNK_IMAGES', 64, 1),
    indexWorkerChunks: int(env, 'INDEX_WORKER_CHUNKS', 2, 1),
    indexChunkMaxStarts: int(env, 'INDEX_CHUNK_MAX_STARTS', 5, 1),
    maxQueryCost: int(env, 'MAX_QUERY_COST', 10_000, 1),
    maxQueryDepth: int(env, 'MAX_QUERY_DEPTH', 16, 1),
    maxAliases: int(env, 'MAX_ALIASES', 32),
    maxDirectives: int(env, 'MAX_DIRECTIVES', 50),
    maxQueryTokens: int(env, 'MAX_QUERY_TOKENS', 5000, 1),
    maxQueuedItems: int(env, 'MAX_QUEUED_ITEMS', 256, 1),
    maxInflightRequests: int(env, 'MAX_INFLIGHT_REQUESTS', 64, 1),
    requestTimeoutMs: int(env, 'REQUEST_TIMEOUT_MS', 30_000),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000),
    maxModelBytes: int(env, 'MAX_MODEL_MB', 2000, 1) * 1024 * 1024,
    maxModelInputElements: int(env, 'MAX_MODEL_INPUT_ELEMENTS', 4 * 1024 * 1024, 1),
    // caching
    cacheMemoryBytes: megabytes(env, 'CACHE_MEMORY_MB', 256),
    cacheDiskBytes: megabytes(env, 'CACHE_DISK_MB', 2048),
    uploadsBytes: megabytes(env, 'UPLOADS_MB', 1024),
    redisUrl: env.REDIS_URL || undefined,
    redisTtlS: int(env, 'CACHE_REDIS_TTL_S', 7 * 24 * 3600),
    redisTimeoutMs: int(env, 'REDIS_TIMEOUT_MS', 1000, 1),
    responseCache: !/^(0|off|false|no)$/i.test(env.RESPONSE_CACHE ?? ''),
    // other origins and access control
    corsOrigins: corsOrigins(env.CORS_ORIGINS),
    publicUrl: publicUrl(env.PUBLIC_URL),
    apiKeys: list(env.API_KEYS),
    apiKeysForReads: /^(1|on|true|yes)$/i.test(env.API_KEYS_FOR_READS ?? ''),
    apiKeyRateLimit: int(env, 'API_KEY_RATE_LIMIT', 0),
    urlSigningKey: urlSigningKey(env),
  };
}

function urlSigningKey(env: NodeJS.ProcessEnv): string | undefined {
  const key = env.URL_SIGNING_KEY || undefined;
  if (key !== undefined && key.length < 32) throw new Error('URL_SIGNING_KEY must be at least 32 characters (e.g. `openssl rand -hex 32`)');
  return key;
}

/** A size in MB (decimals allowed, for small test bounds) as whole bytes. */
/** A duration in seconds ≥ 0; decimals allowed. */
function seconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number of seconds ≥ 0, got "${raw}"`);
  return value;
}

function megabytes(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback * 1024 * 1024;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number of MB ≥ 0, got "${raw}"`);
  return Math.floor(value * 1024 * 1024);
}

const list = (raw: string | undefined): string[] =>
  (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function corsOrigins(raw: string | undefined): string[] | '*' {
  if (raw === undefined || raw.trim() === '' || raw.trim() === '*') return '*';
  if (raw.trim().toLowerCase() === 'none') return [];
  return list(raw).map((origin) => {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new Error(`CORS_ORIGINS must list origins such as https://example.com, *, or none; got "${origin}"`);
    }
    if (url.origin !== origin.replace(/\/$/, '')) throw new Error(`CORS_ORIGINS lists origins (scheme://host[:port], no path); got "${origin}"`);
    return url.origin;
  });
}

function publicUrl(raw: string | undefined): string {
  if (!raw) return '';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`PUBLIC_URL must be an absolute http(s) URL such as https://example.com/convscope, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`PUBLIC_URL must be an http(s) URL, got "${raw}"`);
  return url.href.replace(/\/+$/, ''); // URL fields append /img/…
}
