/**
 * Runs compiled graphs: ORT sessions are built once per (model, graph) and reused, and every
 * call goes through a per-graph micro-batcher so that concurrent requests share ORT runs.
 * Knows nothing of GraphQL. When the numbers a graph gives change, bump ENGINE_VERSION (cache/keys.ts).
 */
import { CompiledGraph, PIXELS_INPUT } from '../compiler/forward';
import { currentSignal, MicroBatcher, QueueBudget } from './batcher';
import type { GraphCache } from './graph-cache';
import { OrtTensor, Runtime, Session } from './runtime';

/** A preprocessed image: float32 [C, H, W] and a key that identifies its content. */
export interface PreparedImage {
  key: string;
  data: Float32Array;
}

/** An image as 8-bit pixels at the model's input size, [H, W, C] (preprocess.ts modelPixels). */
export interface PixelImage {
  key: string;
  pixels: Uint8Array;
}

/** What the engine needs of a model. */
export interface EngineModel {
  sha256: string;
  inputName: string;
  /** [C, H, W] */
  inputShape: number[];
  /** 1 for models whose graph only runs at batch size 1. */
  maxBatch: number;
}

interface Loaded {
  session: Session;
  outputs: string[];
  key: string;
  compile: () => CompiledGraph;
  /** About what the session holds: its graph's size × SESSION_BYTES_PER_GRAPH_BYTE. */
  bytes: number;
  /** Runs asked for on it and not finished: it is not released while there are any. */
  active: number;
  /** Released to keep the sessions within their bound: run() loads the graph again. */
  released: boolean;
  /** When it was last asked for (performance.now()). */
  lastUsed: number;
}

/** The engine's key of a model's compiled graph: the model file, its input size, what the graph computes. */
export function graphKey(model: EngineModel, graph: string): string {
  return `${model.sha256}/${model.inputShape.join('x')}/${graph}`;
}

/**
 * What an ORT session holds for each byte of its graph: its own copy of the weights inside the
 * graph and the matrices it pre-packs (resident memory measured 1.7× on ViT-B/16, 2.1× on
 * ConvNeXt-T and 2.8× on ResNet-50 graphs, onnxruntime-node 1.30): the sessions' bound counts
 * this estimate.
 */
const SESSION_BYTES_PER_GRAPH_BYTE = 2.5;

/**
 * What a session takes while it is created: the graph's bytes, onnxruntime's parse of them and
 * its weights at once (measured 3.3× on VGG-11-BN's logits graph). Room for this much is made
 * before a session is created, so that loading one does not add its peak to a full bound.
 */
export const SESSION_LOAD_BYTES_PER_GRAPH_BYTE = 3.5;

/**
 * What a session holds, and takes while it is created, for each byte of the model's shared
 * weights (onnx/weights.ts) its graph refers to: the runtime computes on the file's mapped
 * pages, which all sessions of the model share (the page cache's, counted once), and keeps its
 * own copies only of the weights it lays out anew (blocked convolution weights): measured
 * 0.05× on AlexNet's graphs, 0.11× on VGG-11-BN's, 0.04× on ViT-B/16's forward graph. Shared
 * weights that the runtime folds into new ones (a MatMul's weights transposed for its backward
 * rule) are counted whole on top (CompiledGraph.foldedBytes).
 */
const SESSION_BYTES_PER_SHARED_BYTE = 0.2;

/** Told of every ORT run (items in it, seconds) and of each item's wait in a batcher queue (seconds). */
export interface EngineObserver {
  run?(items: number, seconds: number): void;
  queueWait?(seconds: number): void;
}

export interface EngineOptions {
  maxBatch: number;
  windowMs: number;
  /** Skip the window when no run is pending (see batcher.ts). */
  idleStart?: boolean;
  /** Items that may wait in all batchers together (MAX_QUEUED_ITEMS); default: unbounded. */
  maxQueued?: number;
  /**
   * Bytes of compiled graphs whose sessions stay loaded (SESSION_MEMORY_MB); beyond it the least
   * recently used idle ones are released. Default: unbounded.
   */
  sessionBytes?: number;
  /** Compiled graphs kept on disk across restarts and releases (GRAPH_CACHE_MB); none: compiled each time a session loads. */
  graphCache?: GraphCache;
  /** Graphs may refer to their model's weights in a shared file (SHARED_WEIGHTS; see sharesWeights). Default: no. */
  sharedWeights?: boolean;
  /** Sessions not asked for in this long are released (SESSION_IDLE_S): a model nobody uses holds no session. Default: never. */
  sessionIdleMs?: number;
}

export class Engine {
  /** ORT runs and the items they carried, for metrics and for tests that prove caching. */
  readonly stats = {
    runs: 0,
    items: 0,
    /** items dropped unrun because their request was cancelled */
    dropped: 0,
    /** sessions released to stay within sessionBytes */
    evictions: 0,
    /** sessions released after sessionIdleMs without use */
    idleReleases: 0,
    /** graphs compiled, and graphs loaded from the graph cache instead */
    compiled: 0,
    graphsFromDisk: 0,
  };
  /** The bound on waiting items shared by every batcher (backpressure; see batcher.ts). */
  readonly budget: QueueBudget;
  /** Recent ORT time per item, ms (moving average): the basis of the retry hint. */
  private msPerItem = 10;
  /** The end of the last ORT run asked for: runs go one at a time (see run). */
  private lane: Promise<void> = Promise.resolve();
  /** ORT runs asked for and not yet finished. */
  private pendingRuns = 0;
  /** Observers of every ORT run and of every item's wait in a batcher queue (metrics: src/http/metrics.ts). */
  readonly observers: EngineObserver[] = [];
  /** By graph key, least recently used first. */
  private readonly sessions = new Map<string, Promise<Loaded>>();
  /** The sessions of `sessions` that have loaded, and their bytes in all. */
  private readonly loaded = new Map<string, Loaded>();
  private loadedBytes = 0;
  private readonly batchers = new Map<string, MicroBatcher<unknown, unknown>>();

  constructor(
    readonly runtime: Runtime,
    private readonly options: EngineOptions,
  ) {
    this.budget = new QueueBudget(options.maxQueued ?? Number.POSITIVE_INFINITY, () => this.retryAfterMs());
    const idleMs = options.sessionIdleMs;
    if (idleMs) this.idleSweep = setInterval(() => this.releaseIdle(idleMs), Math.max(250, idleMs / 4)).unref();
  }

  private readonly idleSweep?: NodeJS.Timeout;

  /** Releases the sessions with no run asked for in the last `idleMs`. */
  private releaseIdle(idleMs: number): void {
    const now = performance.now();
    for (const [key, l] of this.loaded) {
      if (l.active === 0 && now - l.lastUsed > idleMs) {
        void this.drop(key);
        this.stats.idleReleases++;
      }
    }
  }

  /** Items waiting in all batchers. */
  get queued(): number {
    return this.budget.queued;
  }

  /**
   * For a request (see batcher.ts), throws OverloadedError now if the queue is full: lets callers
   * refuse before costly preparation. Outside a request it does nothing.
   */
  admit(): void {
    if (currentSignal()) this.budget.check(1);
  }

  /** Roughly when the waiting items will have run, in ms (at least a batch window and 100 ms, at most a minute). */
  retryAfterMs(): number {
    const estimate = this.budget.queued * this.msPerItem + this.options.windowMs;
    return Math.min(60_000, Math.max(100, Math.ceil(estimate)));
  }

  /** The session of a compiled graph, compiled and loaded on first use. */
  load(key: string, compile: () => CompiledGraph): Promise<Loaded> {
    let loaded = this.sessions.get(key);
    if (loaded) {
      this.sessions.delete(key); // the most recently used goes last
      this.sessions.set(key, loaded);
      const l = this.loaded.get(key);
      if (l) l.lastUsed = performance.now();
      return loaded;
    }
    loaded = (async () => {
      const { source, outputs, graphBytes, sharedBytes, foldedBytes } = await this.graph(key, compile);
      const shared = SESSION_BYTES_PER_SHARED_BYTE * sharedBytes + foldedBytes;
      // Room first: the sessions released give their memory back before this one takes its own.
      await this.releaseBeyondBound(key, SESSION_LOAD_BYTES_PER_GRAPH_BYTE * graphBytes + shared);
      const bytes = SESSION_BYTES_PER_GRAPH_BYTE * graphBytes + shared;
      const session = await this.runtime.createSession(source, { moveModel: true, sharedWeights: sharedBytes > 0 });
      const l: Loaded = { session, outputs, key, compile, bytes, active: 0, released: false, lastUsed: performance.now() };
      this.loaded.set(key, l);
      this.loadedBytes += l.bytes;
      void this.releaseBeyondBound(key); // sessions that loaded meanwhile
      return l;
    })();
    this.sessions.set(key, loaded);
    loaded.catch(() => this.sessions.delete(key));
    return loaded;
  }

  /**
   * Whether compiled graphs may refer to their model's weights in a shared file (onnx/weights.ts,
   * OnnxGraph.shareWeights): graphs are then loaded from the graph cache's folder, where that
   * file is written, and only onnxruntime-node's CPU provider computes on the file's pages.
   */
  get sharesWeights(): boolean {
    return this.options.sharedWeights === true && this.runtime.backend === 'cpu' && this.options.graphCache !== undefined;
  }

  /** Where models keep their large weights on disk (OnnxGraph.storeWeights): the graph cache's folder, if there is one. */
  get weightsDir(): string | undefined {
    return this.options.graphCache?.weightsDir;
  }

  /** A graph to load: from the graph cache on disk, else compiled now (and stored there). */
  private async graph(
    key: string,
    compile: () => CompiledGraph,
  ): Promise<{ source: Uint8Array | string; outputs: string[]; graphBytes: number; sharedBytes: number; foldedBytes: number }> {
    const cache = this.options.graphCache;
    const stored = cache?.get(key);
    if (stored) {
      this.stats.graphsFromDisk++;
      return { source: stored.file, outputs: stored.outputs, graphBytes: stored.bytes, sharedBytes: stored.sharedBytes, foldedBytes: stored.foldedBytes };
    }
    const graph = compile();
    this.stats.compiled++;
    const graphBytes = graph.bytes;
    const sharedBytes = graph.sharedBytes ?? 0;
    if (sharedBytes > 0 && !cache) throw new Error('a graph that refers to shared weights needs the graph cache (GRAPH_CACHE_MB > 0)');
    // Written to the graph cache from its parts and loaded from there by the runtime, the graph
    // is never whole in this thread. One that could not be stored (a full disk) is loaded from
    // its bytes, unless it refers to shared weights (found only beside a stored graph).
    const storing = cache ? cache.put(key, graph) : Promise.resolve(graph.model);
    const source = sharedBytes > 0 ? await storing : await storing.catch(() => graph.model);
    return { source, outputs: graph.outputs, graphBytes, sharedBytes, foldedBytes: graph.foldedBytes ?? 0 };
  }

  /**
   * Releases the least recently used sessions that have no run asked for, other than `keep`,
   * until the loaded graphs and `incoming` bytes about to load fit in sessionBytes. Each session
   * holds its own copy of the weights inside its graph (about 250 MB for a graph through AlexNet's
   * classifier, where graphs do not refer to shared weights), and every layer, method and seed
   * kind asked for makes a graph.
   */
  private releaseBeyondBound(keep: string, incoming = 0): Promise<void> {
    const bound = this.options.sessionBytes ?? Number.POSITIVE_INFINITY;
    const released: Promise<void>[] = [];
    for (const key of this.sessions.keys()) {
      if (this.loadedBytes + incoming <= bound) break;
      const l = this.loaded.get(key);
      if (l && key !== keep && l.active === 0) {
        released.push(this.drop(key));
        this.stats.evictions++;
      }
    }
    return Promise.all(released).then(() => undefined);
  }

  /** Forgets a session and releases it if it had loaded (the worker releases it after the runs sent before). */
  private drop(key: string): Promise<void> {
    const l = this.loaded.get(key);
    this.sessions.delete(key);
    if (!l) return Promise.resolve();
    this.loaded.delete(key);
    this.loadedBytes -= l.bytes;
    l.released = true;
    return l.session.release().catch(() => undefined);
  }

  /** The loaded sessions' graph keys (least recently used first) and their graphs' bytes in all. */
  get sessionStats(): { bytes: number; keys: string[] } {
    return { bytes: this.loadedBytes, keys: [...this.sessions.keys()].filter((k) => this.loaded.has(k)) };
  }

  /** One ORT run. The feeds' buffers are moved to the runtime's thread (then unusable here): build them for this run only. */
  async run(loaded: Loaded, feeds: Record<string, OrtTensor>, items: number): Promise<Record<string, OrtTensor>> {
    // One run at a time: runs of different graphs would only compete for the same cores. With
    // ORT_WORKER=false the runs block the main thread (onnxruntime's bindings run synchronously),
    // and runs queued together would hold the event loop for all of them at once, starving I/O:
    // the turn of the event loop between runs keeps it served. Off the thread, the next run
    // starts at once, while this thread handles the last one's results.
    const previous = this.lane;
    let release!: () => void;
    this.lane = new Promise<void>((resolve) => (release = resolve));
    this.pendingRuns++;
    let current = loaded;
    current.active++;
    current.lastUsed = performance.now();
    let start = performance.now();
    try {
      await previous;
      if (!this.runtime.offThread) await new Promise((resolve) => setImmediate(resolve));
      if (current.released) {
        // Released to make room between load() and this run: load it again.
        current.active--;
        current = await this.load(current.key, current.compile);
        current.active++;
      }
      this.stats.runs++;
      this.stats.items += items;
      start = performance.now();
      return await current.session.run(feeds, { moveFeeds: true });
    } finally {
      current.active--;
      this.pendingRuns--;
      release();
      const ms = performance.now() - start;
      this.msPerItem = 0.8 * this.msPerItem + 0.2 * (ms / Math.max(1, items));
      for (const o of this.observers) o.run?.(items, ms / 1000);
    }
  }

  /**
   * A batcher per compiled graph (or per `key`), shared by every request in the process: runs of
   * at most `maxBatch` items, and at most MAX_BATCH unless `limit` says otherwise.
   */
  batcher<I, O>(key: string, maxBatch: number, runBatch: (items: I[]) => Promise<O[]>, limit = this.options.maxBatch): MicroBatcher<I, O> {
    let b = this.batchers.get(key) as MicroBatcher<I, O> | undefined;
    if (!b) {
      // Queue waits (submit → batch start), stamped per item, for the observers.
      const queuedAt = new WeakMap<object, number>();
      const timed = async (items: I[]) => {
        const now = performance.now();
        for (const item of items) {
          const at = typeof item === 'object' && item !== null ? queuedAt.get(item) : undefined;
          if (at !== undefined) for (const o of this.observers) o.queueWait?.((now - at) / 1000);
        }
        return runBatch(items);
      };
      b = new MicroBatcher<I, O>(timed, {
        maxBatch: Math.min(maxBatch, limit),
        windowMs: this.options.windowMs,
        idle: this.options.idleStart ? () => this.pendingRuns === 0 : undefined,
        budget: this.budget,
        onDrop: (n) => (this.stats.dropped += n),
      });
      const submit = b.submit.bind(b);
      b.submit = (item: I) => {
        if (typeof item === 'object' && item !== null) queuedAt.set(item, performance.now());
        return submit(item);
      };
      this.batchers.set(key, b as MicroBatcher<unknown, unknown>);
    }
    return b;
  }

  /**
   * The outputs of a graph that reads one image (`graph` names what `compile` builds, unique
   * per model), for one image; concurrent calls share a run.
   */
  forward(model: EngineModel, graph: string, compile: () => CompiledGraph, image: PreparedImage): Promise<Float32Array[]> {
    return this.forwardBatch(model, graph, compile, image, (images) => ({ [model.inputName]: this.stack(model, images) }));
  }

  /** forward() for graphs that take 8-bit pixels (see compileChannelMaxima), [B, H, W, C]. */
  forwardPixels(model: EngineModel, graph: string, compile: () => CompiledGraph, image: PixelImage): Promise<Float32Array[]> {
    return this.forwardBatch(model, graph, compile, image, (images) => {
      const [C, H, W] = model.inputShape;
      return {
        [PIXELS_INPUT]: new this.runtime.Tensor(
          'uint8',
          concatenate(
            images.map((img) => img.pixels),
            Uint8Array,
          ),
          [images.length, H, W, C],
        ),
      };
    });
  }

  private forwardBatch<T extends { key: string }>(
    model: EngineModel,
    graph: string,
    compile: () => CompiledGraph,
    image: T,
    feeds: (images: T[]) => Record<string, OrtTensor>,
  ): Promise<Float32Array[]> {
    const key = graphKey(model, graph);
    return this.batcher<T, Float32Array[]>(key, model.maxBatch, async (items) => {
      const loaded = await this.load(key, compile);
      const { images, itemImage } = uniqueImages(items);
      const out = await this.run(loaded, feeds(images), images.length);
      const perImage = loaded.outputs.map((name) => split(out[name], images.length));
      return itemImage.map((i) => perImage.map((o) => o[i]));
    }).submit(image);
  }

  /** [B, C, H, W] from B images: always a new array, as run() moves its feeds (the images' own arrays are cached). */
  stack(model: EngineModel, images: PreparedImage[]): OrtTensor {
    return new this.runtime.Tensor(
      'float32',
      concatenate(
        images.map((img) => img.data),
        Float32Array,
      ),
      [images.length, ...model.inputShape],
    );
  }

  /** Fails waiting work, lets running batches finish, then releases every session. */
  async close(): Promise<void> {
    clearInterval(this.idleSweep);
    await Promise.all([...this.batchers.values()].map((b) => b.close()));
    await Promise.all([...this.sessions.values()].map((p) => p.catch(() => undefined)));
    await Promise.all([...this.loaded.keys()].map((key) => this.drop(key)));
    await this.runtime.close();
  }
}

/** Equal-sized arrays one after the other, in a new array. */
function concatenate<A extends Float32Array | Uint8Array>(parts: A[], Type: { new (length: number): A }): A {
  const size = parts[0].length;
  const out = new Type(size * parts.length);
  parts.forEach((p, i) => out.set(p, i * size));
  return out;
}

/** Deduplicates the images of a batch: the unique images and, per item, its image's index. */
export function uniqueImages<T extends { key: string }>(all: T[]): { images: T[]; itemImage: number[] } {
  const images: T[] = [];
  const index = new Map<string, number>();
  const itemImage = all.map((img) => {
    let i = index.get(img.key);
    if (i === undefined) {
      i = images.length;
      index.set(img.key, i);
      images.push(img);
    }
    return i;
  });
  return { images, itemImage };
}

/** Splits a batch output along its first dimension. */
export function split(t: OrtTensor, count: number): Float32Array[] {
  const data = t.data as Float32Array;
  const size = data.length / count;
  return Array.from({ length: count }, (_, i) => data.slice(i * size, (i + 1) * size));
}
