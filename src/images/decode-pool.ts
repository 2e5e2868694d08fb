/**
 * Image decoding in worker threads (DECODE_THREADS), for index jobs: on the main thread the
 * JPEG decoder (jpeg.ts, WebAssembly) and the job's own work take CPU from the runtime's thread;
 * where there are cores to spare, images are decoded on these threads instead. Each worker runs
 * the same modelPixels() as the main thread, so the pixels are the same bytes. The image bytes
 * and the pixels are moved between threads, not copied.
 *
 * This one file is both sides: DecodePool (main thread) starts workers on this same file, and
 * serve() below answers their messages.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Preprocessing } from '../model';
import { ImageError, ImageLimits, modelPixels } from './preprocess';

interface Request {
  id: number;
  bytes: Uint8Array;
  preprocessing: Preprocessing;
}

type Reply = { id: number; pixels: Uint8Array } | { id: number; error: string; imageError: boolean };

interface WorkerData {
  convscopeDecode: ImageLimits;
}

interface Waiting {
  resolve: (pixels: Buffer) => void;
  reject: (e: Error) => void;
}

/** One worker and the decodes it has been given. */
class DecodeWorker {
  readonly waiting = new Map<number, Waiting>();
  private stopped: Error | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (reply: Reply) => {
      const w = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) worker.unref();
      if ('error' in reply) w?.reject(reply.imageError ? new ImageError(reply.error) : new Error(reply.error));
      else w?.resolve(Buffer.from(reply.pixels.buffer, reply.pixels.byteOffset, reply.pixels.byteLength));
    });
    worker.on('error', (e) => this.stop(new Error(`a decoding worker failed: ${e.message}`)));
    worker.on('exit', (code) => this.stop(new Error(`a decoding worker stopped (exit code ${code})`)));
    // Only a worker with decodes pending keeps the process alive (unref after the listeners:
    // adding a 'message' listener refs the port again).
    worker.unref();
  }

  private stop(error: Error): void {
    this.stopped ??= error;
    for (const w of this.waiting.values()) w.reject(this.stopped);
    this.waiting.clear();
  }

  decode(id: number, bytes: Buffer, preprocessing: Preprocessing): Promise<Buffer> {
    if (this.stopped) return Promise.reject(this.stopped);
    // Moved, not cloned: bytes that share their buffer (a Buffer's pool, a view) are copied once first.
    const moved = ownsBuffer(bytes) ? bytes : new Uint8Array(bytes);
    return new Promise<Buffer>((resolve, reject) => {
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, bytes: moved, preprocessing } satisfies Request, [moved.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.stop(new Error('the decoding pool is closed'));
    await this.worker.terminate();
  }
}

export class DecodePool {
  /** Images decoded by the workers (successfully or not). */
  decoded = 0;
  private nextId = 0;

  private constructor(private readonly workers: DecodeWorker[]) {}

  /** A pool of `threads` workers; none for 0 (images are then decoded on the calling thread). */
  static open(threads: number, limits: ImageLimits): DecodePool | undefined {
    if (threads === 0) return undefined;
    const data: WorkerData = { convscopeDecode: { maxImageBytes: limits.maxImageBytes, maxImagePixels: limits.maxImagePixels } };
    return new DecodePool(Array.from({ length: threads }, () => new DecodeWorker(new Worker(__filename, { workerData: data }))));
  }

  get threads(): number {
    return this.workers.length;
  }

  /**
   * modelPixels() of the bytes in the least busy worker. The bytes are moved to it: the caller's
   * Buffer is empty afterwards, unless it shared its memory with others (then it was copied).
   */
  async modelPixels(bytes: Buffer, preprocessing: Preprocessing): Promise<Buffer> {
    const worker = this.workers.reduce((a, b) => (b.waiting.size < a.waiting.size ? b : a));
    try {
      return await worker.decode(this.nextId++, bytes, preprocessing);
    } finally {
      this.decoded++;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}

/** Whether an array is the whole of its buffer (so moving the buffer moves nothing else). */
function ownsBuffer(a: ArrayBufferView): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
}

/** The worker's side: decodes one request at a time (each worker is one more core's worth). */
function serve(port: NonNullable<typeof parentPort>, limits: ImageLimits): void {
  let queue = Promise.resolve();
  port.on('message', ({ id, bytes, preprocessing }: Request) => {
    queue = queue.then(async () => {
      try {
        const pixels = await modelPixels(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), preprocessing, limits);
        const owned = ownsBuffer(pixels) ? pixels : new Uint8Array(pixels);
        port.postMessage({ id, pixels: owned } satisfies Reply, [owned.buffer as ArrayBuffer]);
      } catch (e) {
        port.postMessage({ id, error: (e as Error).message, imageError: e instanceof ImageError } satisfies Reply);
      }
    });
  });
}

if (!isMainThread && parentPort && (workerData as Partial<WorkerData> | undefined)?.convscopeDecode) {
  serve(parentPort, (workerData as WorkerData).convscopeDecode);
}
