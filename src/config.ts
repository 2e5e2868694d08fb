import path from 'node:path';

/** Every setting comes from the environment; defaults make a fresh clone work. */
export interface Config {
  host: string;
  port: number;
  modelsDir: string;
  datasetsDir: string;
  cacheDir: string;
  logLevel: string;
  /** cpu (onnxruntime-node, default), wasm (onnxruntime-web), cuda, webgpu. */
  backend: Backend;
  /** Threads per ORT session (intra-op). */
  threads: number;
  /** Largest batch the micro-batcher sends to one ORT run. */
  maxBatch: number;
  /** How long the micro-batcher waits for more work before a run, in ms. */
  batchWindowMs: number;
  /** Bytes of rendered PNG/.npy blobs kept in memory (the disk copy stays). */
  blobMemoryBytes: number;
  /** Largest accepted HTTP JSON body (inline base64 images live there). */
  bodyLimitBytes: number;
  /** Largest accepted image, in bytes after base64 decoding, and in pixels. */
  maxImageBytes: number;
  maxImagePixels: number;
  /** Largest `first` on any connection. */
  maxPageSize: number;
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
    logLevel: env.LOG_LEVEL || 'info',
    backend,
    threads: int(env, 'ORT_THREADS', 2, 1),
    maxBatch: int(env, 'MAX_BATCH', 16, 1),
    batchWindowMs: int(env, 'BATCH_WINDOW_MS', 3),
    blobMemoryBytes: int(env, 'BLOB_MEMORY_MB', 256) * 1024 * 1024,
    bodyLimitBytes: int(env, 'BODY_LIMIT_MB', 16, 1) * 1024 * 1024,
    maxImageBytes: int(env, 'MAX_IMAGE_MB', 10, 1) * 1024 * 1024,
    maxImagePixels: int(env, 'MAX_IMAGE_PIXELS', 40_000_000, 1),
    maxPageSize: int(env, 'MAX_PAGE_SIZE', 100, 1),
  };
}
