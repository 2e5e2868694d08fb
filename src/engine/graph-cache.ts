/**
 * Compiled graphs on disk (CACHE_DIR/graphs), so that a restart, or a session released and
 * asked for again, loads a graph without compiling it: ONNX Runtime reads the file itself.
 * Files are named by a hash of the graph's engine key (the model file's sha256, its input size,
 * what the graph computes) and of the compiler's own code, so a changed compiler never reads
 * an old graph. Bounded in bytes (GRAPH_CACHE_MB); the least recently used go first.
 *
 * Each served model's large weights are in one file in the folder weights/ here (onnx/weights.ts,
 * written when the model loads), which graphs read when they are compiled, or refer to when
 * they share them. These files count in the bound, but only graphs are evicted: a model's file
 * goes when the model does (registry, RETIRED_WEIGHTS_S).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CompiledGraph } from '../compiler/forward';
import { writeParts } from '../onnx/proto';
import { WEIGHTS_FOLDER } from '../onnx/weights';

/** What is stored beside a graph: its outputs, and the shared weights file it refers to, if any. */
interface GraphInfo {
  outputs: string[];
  shared?: { file: string; bytes: number; folded: number };
}

/** A hash of the code that builds graphs (this build's compiled compiler and ONNX modules). */
function compilerFingerprint(): string {
  const hash = createHash('sha256');
  for (const dir of ['../compiler', '../onnx']) {
    const full = path.join(__dirname, dir);
    for (const file of fs
      .readdirSync(full)
      .filter((f) => /\.(js|json)$/.test(f))
      .sort()) {
      hash.update(file).update(fs.readFileSync(path.join(full, file)));
    }
  }
  return hash.digest('hex').slice(0, 16);
}

export class GraphCache {
  private readonly fingerprint = compilerFingerprint();

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {
    fs.mkdirSync(path.join(dir, WEIGHTS_FOLDER), { recursive: true });
  }

  /** The folder of the models' weight files (weights.ts), beside the graphs that may refer to them. */
  get weightsDir(): string {
    return path.join(this.dir, WEIGHTS_FOLDER);
  }

  private file(key: string): string {
    return path.join(this.dir, createHash('sha256').update(`${this.fingerprint}\0${key}`).digest('hex'));
  }

  /**
   * The stored graph of `key`: its file (for the runtime to read), its outputs, its size and the
   * bytes of shared weights it refers to (and of those the runtime copies); marked as used. None
   * if those weights are gone.
   */
  get(key: string): { file: string; outputs: string[]; bytes: number; sharedBytes: number; foldedBytes: number } | undefined {
    const file = this.file(key);
    try {
      const info = JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) as GraphInfo;
      const { size } = fs.statSync(`${file}.onnx`);
      if (info.shared && !fs.existsSync(path.join(this.dir, info.shared.file))) return undefined;
      const now = new Date();
      fs.utimesSync(`${file}.onnx`, now, now);
      return { file: `${file}.onnx`, outputs: info.outputs, bytes: size, sharedBytes: info.shared?.bytes ?? 0, foldedBytes: info.shared?.folded ?? 0 };
    } catch {
      return undefined;
    }
  }

  /**
   * Stores a graph (whole or not at all: written aside, then renamed); returns the graph's file.
   * Evicts the oldest past the bound. The shared weights a graph refers to were written when its
   * model loaded (OnnxGraph.storeWeights, into weightsDir).
   */
  async put(key: string, graph: CompiledGraph): Promise<string> {
    const weights = graph.sharedWeights && path.join(this.dir, graph.sharedWeights.location);
    if (weights && !fs.existsSync(weights)) throw new Error(`the weights file ${weights} is gone; it is written again at the next scan of the models folder`);
    const file = this.file(key);
    const partial = `${file}.${process.pid}.partial`;
    await writeParts(partial, graph.parts);
    const shared = graph.sharedWeights && { file: graph.sharedWeights.location, bytes: graph.sharedBytes ?? 0, folded: graph.foldedBytes ?? 0 };
    await fs.promises.writeFile(`${file}.json`, JSON.stringify({ outputs: graph.outputs, shared } satisfies GraphInfo));
    await fs.promises.rename(partial, `${file}.onnx`);
    this.evict(`${file}.onnx`);
    return `${file}.onnx`;
  }

  /** Removes the least recently used graphs (by modification time) until the folder, weights included, fits the bound; never `keep`. */
  private evict(keep: string): void {
    const weights = fs.readdirSync(this.weightsDir).reduce((n, f) => n + (fs.statSync(path.join(this.weightsDir, f), { throwIfNoEntry: false })?.size ?? 0), 0);
    const entries = fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.onnx'))
      .map((f) => {
        const full = path.join(this.dir, f);
        const stat = fs.statSync(full, { throwIfNoEntry: false });
        return { full, size: stat?.size ?? 0, used: stat?.mtimeMs ?? 0 };
      })
      .sort((a, b) => a.used - b.used);
    let total = weights + entries.reduce((n, e) => n + e.size, 0);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (e.full === keep) continue;
      fs.rmSync(e.full, { force: true });
      fs.rmSync(e.full.replace(/\.onnx$/, '.json'), { force: true });
      total -= e.size;
    }
  }
}
