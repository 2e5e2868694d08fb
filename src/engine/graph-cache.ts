/**
 * Compiled graphs on disk (CACHE_DIR/graphs), so that a restart, or a session released and
 * asked for again, loads a graph without compiling it: ONNX Runtime reads the file itself.
 * Files are named by a hash of the graph's engine key (the model file's sha256, its input size,
 * what the graph computes) and of the compiler's own code, so a changed compiler never reads
 * an old graph. Bounded in bytes (GRAPH_CACHE_MB); the least recently used go first.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CompiledGraph } from '../compiler/forward';

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
    fs.mkdirSync(dir, { recursive: true });
  }

  private file(key: string): string {
    return path.join(this.dir, createHash('sha256').update(`${this.fingerprint}\0${key}`).digest('hex'));
  }

  /** The stored graph of `key`: its file (for the runtime to read), its outputs and size; marked as used. */
  get(key: string): { file: string; outputs: string[]; bytes: number } | undefined {
    const file = this.file(key);
    try {
      const outputs = JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) as string[];
      const { size } = fs.statSync(`${file}.onnx`);
      const now = new Date();
      fs.utimesSync(`${file}.onnx`, now, now);
      return { file: `${file}.onnx`, outputs, bytes: size };
    } catch {
      return undefined;
    }
  }

  /** Stores a graph (whole or not at all: written aside, then renamed) and returns its file; evicts the oldest past the bound. */
  async put(key: string, graph: CompiledGraph): Promise<string> {
    const file = this.file(key);
    const partial = `${file}.${process.pid}.partial`;
    await fs.promises.writeFile(partial, graph.model);
    await fs.promises.writeFile(`${file}.json`, JSON.stringify(graph.outputs));
    await fs.promises.rename(partial, `${file}.onnx`);
    this.evict(`${file}.onnx`);
    return `${file}.onnx`;
  }

  /** Removes the least recently used graphs (by modification time) until the folder fits the bound, never `keep`. */
  private evict(keep: string): void {
    const entries = fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.onnx'))
      .map((f) => {
        const full = path.join(this.dir, f);
        const stat = fs.statSync(full, { throwIfNoEntry: false });
        return { full, size: stat?.size ?? 0, used: stat?.mtimeMs ?? 0 };
      })
      .sort((a, b) => a.used - b.used);
    let total = entries.reduce((n, e) => n + e.size, 0);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (e.full === keep) continue;
      fs.rmSync(e.full, { force: true });
      fs.rmSync(e.full.replace(/\.onnx$/, '.json'), { force: true });
      total -= e.size;
    }
  }
}
