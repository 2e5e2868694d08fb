/**
 * A Runtime whose sessions live in a worker thread. onnxruntime's Node and web bindings run a
 * session synchronously on the calling thread: on the main thread, every run would stop HTTP,
 * image decoding and index pipelines for its whole length. Here the main thread only posts the
 * feeds and gets the outputs back (moved between threads, not copied, where the caller allows).
 *
 * This one file is both sides of the protocol: openWorkerRuntime (main thread) starts the worker
 * on this same file, and serve() below answers its messages.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Tensor } from 'onnxruntime-common';
import type { Backend } from '../config';
import { openLocalRuntime, OrtTensor, Runtime, RuntimeOptions, Session, SessionOptions } from './runtime';

/** A tensor as it crosses threads. */
interface Plain {
  type: Tensor.Type;
  data: Tensor.DataType;
  dims: readonly number[];
}

type Request =
  | { op: 'open'; id: number }
  | { op: 'create'; id: number; session: number; model: Uint8Array | string; options?: SessionOptions }
  | { op: 'run'; id: number; session: number; feeds: Record<string, Plain> }
  | { op: 'release'; id: number; session: number };

/** A request before it is numbered. */
type Unnumbered = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;

type Reply = { id: number; error?: string; outputs?: Record<string, Plain> };

interface WorkerData {
  convscopeRuntime: { backend: Backend; threads: number; cpuFallback?: boolean };
}

export async function openWorkerRuntime(backend: Backend, threads: number, { cpuFallback }: RuntimeOptions = {}): Promise<Runtime> {
  const data: WorkerData = { convscopeRuntime: { backend, threads, cpuFallback } };
  const worker = new Worker(__filename, { workerData: data });
  const waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  let stopped: Error | undefined;
  let nextId = 0;
  let nextSession = 0;

  const stop = (error: Error) => {
    stopped ??= error;
    for (const w of waiting.values()) w.reject(stopped);
    waiting.clear();
  };
  worker.on('message', (reply: Reply) => {
    const w = waiting.get(reply.id);
    waiting.delete(reply.id);
    if (waiting.size === 0) worker.unref();
    if (reply.error !== undefined) w?.reject(new Error(reply.error));
    else w?.resolve(reply);
  });
  worker.on('error', (e) => stop(new Error(`the inference worker failed: ${e.message}`)));
  worker.on('exit', (code) => stop(new Error(`the inference worker stopped (exit code ${code})`)));
  // The worker keeps the process alive only while an answer is awaited (ref/unref after the
  // listeners: adding a 'message' listener refs the port again).
  worker.unref();

  const call = (request: Unnumbered, transfer: ArrayBuffer[] = []): Promise<Reply> => {
    if (stopped) return Promise.reject(stopped);
    const id = nextId++;
    return new Promise<Reply>((resolve, reject) => {
      if (waiting.size === 0) worker.ref();
      waiting.set(id, { resolve, reject });
      worker.postMessage({ ...request, id }, transfer);
    });
  };

  try {
    await call({ op: 'open' }); // the backend's own start-up checks run in the worker
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  return {
    backend,
    offThread: true,
    Tensor,
    async createSession(model: Uint8Array | string, options?: SessionOptions): Promise<Session> {
      const session = nextSession++;
      const how = { optimize: options?.optimize, sharedWeights: options?.sharedWeights };
      if (typeof model === 'string') {
        await call({ op: 'create', session, model, options: how }); // a file: the worker's runtime reads it
      } else {
        // Moved to the worker, not cloned: models are hundreds of MB. Bytes the caller keeps, or
        // that share their buffer with others (a Buffer's pool, a view), are copied once first.
        const bytes = options?.moveModel && ownsBuffer(model) ? model : new Uint8Array(model);
        await call({ op: 'create', session, model: bytes, options: how }, [bytes.buffer as ArrayBuffer]);
      }
      return {
        async run(feeds, options) {
          const plain: Record<string, Plain> = {};
          const moved: ArrayBuffer[] = [];
          for (const [name, t] of Object.entries(feeds)) {
            plain[name] = { type: t.type, data: t.data, dims: t.dims };
            const data = t.data as Float32Array;
            if (options?.moveFeeds && ownsBuffer(data)) moved.push(data.buffer as ArrayBuffer);
          }
          // Feeds are copied unless the caller lets them move (a batch's images: megabytes).
          const { outputs } = await call({ op: 'run', session, feeds: plain }, moved);
          const result: Record<string, OrtTensor> = {};
          for (const [name, o] of Object.entries(outputs!)) result[name] = new Tensor(o.type, o.data as Float32Array, o.dims);
          return result;
        },
        async release() {
          await call({ op: 'release', session });
        },
      };
    },
    async close() {
      stop(new Error('the runtime is closed'));
      await worker.terminate();
    },
  };
}

/** Whether an array is the whole of its buffer (so moving the buffer moves nothing else). */
function ownsBuffer(a: ArrayBufferView): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
}

/** Model bytes from which on a session's creation is followed by a collection (small ones are not worth one). */
const COLLECT_AFTER_BYTES = 16 * 1024 * 1024;

/** A full collection of this thread's heap (V8's gc(), exposed to a context made for it). */
let gc: (() => void) | undefined;
function collectGarbage(): void {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
}

/** The worker's side: one local runtime, its sessions by number. */
function serve(port: NonNullable<typeof parentPort>, { backend, threads, cpuFallback }: WorkerData['convscopeRuntime']): void {
  const runtime = openLocalRuntime(backend, threads, { cpuFallback });
  runtime.catch(() => undefined); // reported to the 'open' request
  const sessions = new Map<number, Session>();
  const handle = async (request: Request): Promise<{ reply: Reply; transfer: ArrayBuffer[] }> => {
    const rt = await runtime;
    switch (request.op) {
      case 'open':
        return { reply: { id: request.id }, transfer: [] };
      case 'create':
        sessions.set(request.session, await rt.createSession(request.model, request.options));
        // The runtime made its own copy: the moved bytes (a whole model's weights, e.g. the
        // registry's load-time probe) are garbage now, and would stay resident until this
        // thread's heap is collected, which its small JS allocations hardly ever cause
        // (measured: +234 MB held for AlexNet). Collected now.
        if (typeof request.model !== 'string' && request.model.byteLength >= COLLECT_AFTER_BYTES) {
          request.model = '';
          collectGarbage();
        }
        return { reply: { id: request.id }, transfer: [] };
      case 'release':
        await sessions.get(request.session)?.release();
        sessions.delete(request.session);
        return { reply: { id: request.id }, transfer: [] };
      case 'run': {
        const session = sessions.get(request.session);
        if (!session) throw new Error(`no session ${request.session}`);
        const feeds: Record<string, OrtTensor> = {};
        for (const [name, f] of Object.entries(request.feeds)) feeds[name] = new rt.Tensor(f.type, f.data as Float32Array, f.dims);
        const out = await session.run(feeds);
        const outputs: Record<string, Plain> = {};
        const transfer: ArrayBuffer[] = [];
        for (const [name, t] of Object.entries(out)) {
          // A copy in an ordinary buffer: the binding's own may not be transferable.
          const data = (t.data as Float32Array).slice();
          transfer.push(data.buffer as ArrayBuffer);
          outputs[name] = { type: t.type, data, dims: t.dims };
        }
        return { reply: { id: request.id, outputs }, transfer };
      }
    }
  };
  // Requests are handled one at a time, in order (the engine sends one run at a time anyway).
  let queue = Promise.resolve();
  port.on('message', (request: Request) => {
    queue = queue.then(async () => {
      try {
        const { reply, transfer } = await handle(request);
        port.postMessage(reply, transfer);
      } catch (e) {
        port.postMessage({ id: request.id, error: (e as Error).message } satisfies Reply);
      }
    });
  });
}

if (!isMainThread && parentPort && (workerData as Partial<WorkerData> | undefined)?.convscopeRuntime) {
  serve(parentPort, (workerData as WorkerData).convscopeRuntime);
}
