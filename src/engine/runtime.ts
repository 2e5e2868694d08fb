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
  /** The Tensor class to make feeds with: the binding's own, or in the worker runtime onnxruntime-common's (which both bindings re-export). */
  Tensor: typeof Tensor;
  /**
   * A session of a model given as bytes or as the path of an .onnx file (read by the runtime).
   * `moveModel`: the caller won't read the bytes again, so they may be moved (not copied) to another thread.
   */
  createSession(model: Uint8Array | string, options?: { moveModel?: boolean }): Promise<Session>;
  /** Frees the runtime (its worker thread, if any). */
  close(): Promise<void>;
}

/** The runtime of `backend`: in a worker thread (default), or on the calling thread. */
export async function openRuntime(backend: Backend, threads: number, options: { worker?: boolean } = {}): Promise<Runtime> {
  if (options.worker === false) return openLocalRuntime(backend, threads);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { openWorkerRuntime } = require('./worker-runtime') as typeof import('./worker-runtime');
  return openWorkerRuntime(backend, threads);
}

const HOW_TO: Record<Backend, string> = {
  cpu: 'reinstall dependencies with `npm install`',
  wasm: 'reinstall dependencies with `npm install` (the package onnxruntime-web provides it)',
  cuda:
    'install the CUDA build of onnxruntime-node with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm install` on a machine with an NVIDIA GPU, CUDA 12 and cuDNN 9',
  webgpu: 'run on a machine with a GPU and a WebGPU-capable driver (Vulkan on Linux), or use CONVSCOPE_BACKEND=cpu',
};

/** The runtime of `backend` on this thread (the worker's, or the main one with ORT_WORKER=false). */
export async function openLocalRuntime(backend: Backend, threads: number): Promise<Runtime> {
  let runtime: Runtime;
  if (backend === 'wasm') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require('onnxruntime-web') as typeof import('onnxruntime-common') & { env: { wasm: { numThreads?: number } } };
    ort.env.wasm.numThreads = threads;
    runtime = {
      backend,
      Tensor: ort.Tensor,
      createSession: async (model) =>
        local(await ort.InferenceSession.create(typeof model === 'string' ? fs.readFileSync(model) : model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' })),
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
      createSession: async (model) =>
        local(
          await ort.InferenceSession.create(model as Uint8Array, {
            executionProviders: [backend],
            intraOpNumThreads: threads,
            interOpNumThreads: 1,
            graphOptimizationLevel: 'all',
            // Without the arena each run's activations go back when it ends; with it every
            // session kept the peak of its largest run (EfficientNet-B0's whole-map projections:
            // 4.4 GB resident for a 20 MB model).
            enableCpuMemArena: false,
          }),
        ),
      close: async () => undefined,
    };
  }
  await selfTest(runtime).catch((e: Error) => {
    throw new Error(`the ${backend} backend failed to start (${e.message}): ${HOW_TO[backend]}`);
  });
  return runtime;
}

/** A binding's session as a Session: on this thread, feeds are read in place (nothing to move). */
function local(session: { run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>; release(): Promise<void> }): Session {
  return { run: (feeds) => session.run(feeds), release: () => session.release() };
}

/** The CUDA provider library ships only with ONNXRUNTIME_NODE_INSTALL=cuda12. */
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
