/**
 * The ONNX Runtime behind every inference: onnxruntime-node (CPU, CUDA or WebGPU execution
 * providers) or onnxruntime-web's WASM build running inside Node. All expose the same API.
 *
 * Both bindings run a session on the calling thread, so by default the runtime lives in a
 * worker thread (worker-runtime.ts) and the main thread stays free for HTTP, decoding and
 * everything else while a model runs.
 */
import type { Tensor } from 'onnxruntime-common';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Backend } from '../config';
import { encodeModel } from '../onnx/proto';

export type OrtTensor = Tensor;

/** The part of an ORT InferenceSession the engine uses. */
export interface Session {
  /** `moveFeeds`: the caller won't read the feeds again, so their buffers may be moved (not copied) to another thread. */
  run(feeds: Record<string, OrtTensor>, options?: { moveFeeds?: boolean }): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface Runtime {
  backend: Backend;
  /** Runs happen on another thread: the calling thread is free while one runs (the worker runtime). */
  offThread?: boolean;
  /** The Tensor class to make feeds with: the binding's own, or in the worker runtime onnxruntime-common's (which both bindings re-export). */
  Tensor: typeof Tensor;
  /**
   * A session of a model given as bytes or as the path of an .onnx file (read by the runtime).
   * `moveModel`: the caller won't read the bytes again, so they may be moved (not copied) to another thread.
   * `optimize: false`: no graph optimisation (constant folding would make constant-made tensors weights).
   */
  createSession(model: Uint8Array | string, options?: SessionOptions): Promise<Session>;
  /** Frees the runtime (its worker thread, if any). */
  close(): Promise<void>;
}

export interface SessionOptions {
  moveModel?: boolean;
  optimize?: boolean;
  /**
   * The graph refers to its model's shared weights file (onnx/weights.ts): no pre-packing, which
   * would give each session its own packed copy of the matrices instead of computing on the
   * file's shared pages.
   */
  sharedWeights?: boolean;
}

export interface RuntimeOptions {
  /** Sessions run in a worker thread (default), or on the calling thread. */
  worker?: boolean;
  /**
   * Whether nodes that a GPU backend cannot run may run on the CPU instead (default). false:
   * such a graph fails to load, which is how the GPU tests prove every graph runs on the device.
   */
  cpuFallback?: boolean;
}

/** ORT's refusal to load a graph with nodes only the CPU runs, when cpuFallback is false. */
export const CPU_FALLBACK_REFUSED = /fallback to CPU EP has been explicitly disabled/;

/** The runtime of `backend`: in a worker thread (default), or on the calling thread. */
export async function openRuntime(backend: Backend, threads: number, options: RuntimeOptions = {}): Promise<Runtime> {
  if (options.worker === false) return openLocalRuntime(backend, threads, options);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { openWorkerRuntime } = require('./worker-runtime') as typeof import('./worker-runtime');
  return openWorkerRuntime(backend, threads, options);
}

/**
 * What the CUDA provider of onnxruntime-node 1.30 needs. Its install script accepts only
 * `cuda12`: it fetches Microsoft.ML.OnnxRuntime.Gpu.Linux (same version) from nuget.org, built
 * against CUDA 12 and cuDNN 9.
 */
const CUDA_NEEDS =
  "onnxruntime-node's CUDA provider (after `npm ci`: `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`, which fetches it from nuget.org; package.json's allowScripts keeps npm from running it), " +
  'the CUDA 12 runtime libraries (cudart, cuBLAS, cuFFT, cuRAND), cuDNN 9, an NVIDIA GPU and its driver (≥ 525); ' +
  'or use the image docker/Dockerfile.cuda, run with `--gpus all`';

const HOW_TO: Record<Backend, string> = {
  cpu: 'reinstall dependencies with `npm install`',
  wasm: 'reinstall dependencies with `npm install` (the package onnxruntime-web provides it)',
  cuda: `it needs ${CUDA_NEEDS}`,
  webgpu:
    "run on a machine with a GPU and a WebGPU-capable driver (Vulkan on Linux; without a GPU, Mesa ≥ 25's lavapipe: " +
    '`apt-get install -t bookworm-backports mesa-vulkan-drivers` on Debian 12), or use CONVSCOPE_BACKEND=cpu',
};

/** A shared library the CUDA provider could not load, as what to install. */
const CUDA_LIBRARIES: [RegExp, string][] = [
  [/^libonnxruntime_providers_/, "onnxruntime-node's CUDA provider (`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`)"],
  [/^libcuda\.so/, 'the NVIDIA driver (libcuda.so.1; in Docker: run with --gpus all)'],
  [/^lib(cudart|cublas|cufft|curand|nvrtc)/, 'the CUDA 12 runtime libraries'],
  [/^libcudnn/, 'cuDNN 9'],
];

/** What ORT's start-up error says the CUDA provider lacks: libraries it could not open, or a device. */
function cudaMissing(message: string): string[] {
  const libraries = [...message.matchAll(/([\w.+-]+\.so[.\d]*): cannot open shared object file/g)].map((m) => m[1]);
  const missing = libraries.map((library) => CUDA_LIBRARIES.find(([name]) => name.test(library))?.[1] ?? library);
  if (/no CUDA-capable device|driver version is insufficient/.test(message))
    missing.push('an NVIDIA GPU with a driver for CUDA 12 (in Docker: run with --gpus all)');
  return [...new Set(missing)];
}

/** ORT's start-up error for `backend`, with what is missing named where ORT's message says. */
export function startupError(backend: Backend, message: string): Error {
  const missing = backend === 'cuda' ? cudaMissing(message) : [];
  const lead = missing.length > 0 ? `missing: ${missing.join('; ')}. ` : '';
  return new Error(`the ${backend} backend failed to start (${message.trim()}): ${lead}${HOW_TO[backend]}`);
}

/** What a server runs on (Query.backend). */
export interface BackendInfo {
  name: Backend;
  /** The processor or GPU, as far as the system tells. */
  device: string;
  /** The ONNX Runtime package and version. */
  version: string;
}

export function describeBackend(backend: Backend): BackendInfo {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ort = (name: 'node' | 'web') => `onnxruntime-${name} ${(require(`onnxruntime-${name}`) as typeof import('onnxruntime-common')).env.versions[name]}`;
  const cpus = os.cpus();
  const cpu = `${cpus[0]?.model.trim() || os.arch()} (${cpus.length} cores)`;
  const nvidia = nvidiaGpus();
  switch (backend) {
    case 'cpu':
      return { name: backend, device: cpu, version: ort('node') };
    case 'wasm':
      return { name: backend, device: `${cpu}, WebAssembly`, version: ort('web') };
    case 'cuda':
      return { name: backend, device: nvidia.join(', ') || 'NVIDIA GPU, CUDA device 0', version: ort('node') };
    case 'webgpu':
      return { name: backend, device: nvidia.length > 0 ? nvidia.join(', ') : 'the default WebGPU adapter', version: ort('node') };
  }
}

/** The NVIDIA GPUs' model names, from the driver's /proc files (none without the driver). */
function nvidiaGpus(): string[] {
  const dir = '/proc/driver/nvidia/gpus';
  try {
    return fs.readdirSync(dir).flatMap((gpu) => /^Model:\s*(.+)$/m.exec(fs.readFileSync(path.join(dir, gpu, 'information'), 'utf8'))?.[1].trim() ?? []);
  } catch {
    return [];
  }
}

/** The runtime of `backend` on this thread (the worker's, or the main one with ORT_WORKER=false). */
export async function openLocalRuntime(backend: Backend, threads: number, options: RuntimeOptions = {}): Promise<Runtime> {
  let runtime: Runtime;
  if (backend === 'wasm') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require('onnxruntime-web') as typeof import('onnxruntime-common') & { env: { wasm: { numThreads?: number } } };
    ort.env.wasm.numThreads = threads;
    runtime = {
      backend,
      Tensor: ort.Tensor,
      createSession: async (model, how) =>
        local(
          await ort.InferenceSession.create(typeof model === 'string' ? fs.readFileSync(model) : model, {
            executionProviders: ['wasm'],
            graphOptimizationLevel: optimisation(how),
          }),
        ),
      close: async () => undefined,
    };
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
    const available = ort.listSupportedBackends().find((b) => b.name === backend);
    if (!available || (available.bundled === false && !hasLibrary(backend))) {
      throw new Error(`the ${backend} backend is not available in this onnxruntime-node install: ${HOW_TO[backend]}`);
    }
    runtime = {
      backend,
      Tensor: ort.Tensor,
      createSession: async (model, how) =>
        local(
          await ort.InferenceSession.create(model as Uint8Array, {
            // WebGPU in NCHW: its NHWC layout wraps convs and pools in Transposes, which the
            // optimiser moves onto the boolean masks of the unpooling, where only the CPU runs them.
            executionProviders: [backend === 'webgpu' ? { name: backend, preferredLayout: 'NCHW' } : backend],
            intraOpNumThreads: threads,
            interOpNumThreads: 1,
            graphOptimizationLevel: optimisation(how),
            // Without the arena each run's activations go back when it ends; with it every
            // session kept the peak of its largest run (EfficientNet-B0's whole-map projections:
            // 4.4 GB resident for a 20 MB model).
            enableCpuMemArena: false,
            extra: {
              session: {
                ...(options.cpuFallback === false ? { disable_cpu_ep_fallback: '1' } : {}),
                ...(how?.sharedWeights ? { disable_prepacking: '1' } : {}),
              },
            },
          }),
        ),
      close: async () => undefined,
    };
  }
  await selfTest(runtime).catch((e: Error) => {
    throw startupError(backend, e.message);
  });
  return runtime;
}

function optimisation(how?: SessionOptions): 'all' | 'disabled' {
  return how?.optimize === false ? 'disabled' : 'all';
}

/** A binding's session as a Session: on this thread, feeds are read in place (nothing to move). */
function local(session: { run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>; release(): Promise<void> }): Session {
  return { run: (feeds) => session.run(feeds), release: () => session.release() };
}

/** The CUDA provider library is there only after onnxruntime-node's install script ran with ONNXRUNTIME_NODE_INSTALL=cuda12. */
function hasLibrary(backend: Backend): boolean {
  if (backend !== 'cuda') return false;
  try {
    const bin = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin');
    const files = fs.readdirSync(bin, { recursive: true }) as string[];
    return files.some((f) => f.includes('providers_cuda'));
  } catch {
    return false;
  }
}

/** Runs a one-node graph so that a backend that cannot work fails at start-up, not on a query. */
async function selfTest(runtime: Runtime): Promise<void> {
  const model = encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'selftest',
      node: [{ opType: 'Relu', input: ['x'], output: ['y'], name: 'relu' }],
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }] } } } }],
    },
  });
  const session = await runtime.createSession(model);
  const out = await session.run({ x: new runtime.Tensor('float32', Float32Array.from([-1, 2]), [2]) });
  const y = out.y.data as Float32Array;
  if (y[0] !== 0 || y[1] !== 2) throw new Error(`self-test gave ${Array.from(y)}`);
  await session.release();
}
