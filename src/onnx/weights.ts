/**
 * A model's large weights in one file, written once per model (named by its file's hash). Two uses:
 *
 * - The weights' bytes need not stay in memory (storeWeights): they are read from the file when a
 *   graph is compiled, one weight at a time, and the model's file is not held whole (AlexNet: 244 MB,
 *   VGG-11-BN: 507 MB per model served).
 * - Compiled graphs may refer to the file (ONNX external data, SHARED_WEIGHTS) instead of each
 *   carrying its own copy. ONNX Runtime's CPU provider maps such a file into memory and computes
 *   on the mapped pages: the sessions of one model then share one copy of its weights (the page
 *   cache's), where with the weights inside each graph every session parsed and kept its own
 *   (measured 240–640 MB per session of AlexNet's and VGG's graphs).
 */
import fs from 'node:fs';
import type { ModelProto, TensorProto } from './proto';

/** Weights at least this large go to the file; smaller ones stay inside the graphs. */
const SHARED_BYTES = 64 * 1024;
/** Each weight starts at a multiple of this (the runtime computes on the mapped bytes in place). */
const ALIGN = 64;
/** The folder, beside the graphs' files, that holds the weight files (ONNX Runtime reads external data only below a graph's folder). */
export const WEIGHTS_FOLDER = 'weights';

/** Where a tensor's bytes lie in a weights file. */
export interface StoredBytes {
  file: string;
  offset: number;
  length: number;
}

/** A tensor's raw_data size, in memory or stored. */
export function byteLength(t: TensorProto): number {
  return t.rawData?.byteLength ?? t.stored?.length ?? 0;
}

/** A tensor's raw_data: in memory, or read from its weights file. */
export function rawBytes(t: TensorProto): Uint8Array | undefined {
  if (t.rawData || !t.stored) return t.rawData;
  const { file, offset, length } = t.stored;
  const bytes = Buffer.allocUnsafe(length);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new Error(
      `the weights of tensor "${t.name}" were in ${file}, which cannot be read (${(e as Error).message}); it is written again at the next scan of the models folder`,
    );
  }
  try {
    let read = 0;
    while (read < length) {
      const n = fs.readSync(fd, bytes, read, length - read, offset + read);
      if (n === 0) throw new Error(`the weights file ${file} ends before tensor "${t.name}" (at ${offset + read} of ${offset + length} bytes)`);
      read += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

export class SharedWeights {
  /** Each shared weight's byte offset in the file. */
  private readonly offsets = new Map<string, number>();
  /** The file's size. */
  readonly bytes: number;

  /** `name`: the file's name, unique to the model (e.g. its file's sha256). */
  constructor(
    readonly name: string,
    private readonly initializers: ReadonlyMap<string, TensorProto>,
  ) {
    let at = 0;
    for (const [tensor, t] of initializers) {
      const length = byteLength(t);
      if (length < SHARED_BYTES) continue;
      at = Math.ceil(at / ALIGN) * ALIGN;
      this.offsets.set(tensor, at);
      at += length;
    }
    this.bytes = at;
  }

  /** The file's path relative to a graph's folder (the location graphs name). */
  get location(): string {
    return `${WEIGHTS_FOLDER}/${this.name}`;
  }

  /** Where `t` is in the file, if it is there. */
  offsetOf(t: TensorProto): number | undefined {
    const offset = this.offsets.get(t.name ?? '');
    return offset !== undefined && this.initializers.get(t.name!) === t ? offset : undefined;
  }

  /** `t` as a reference into the file, or undefined if it is not there. */
  reference(t: TensorProto): TensorProto | undefined {
    const offset = this.offsetOf(t);
    if (offset === undefined) return undefined;
    const externalData = [
      { key: 'location', value: this.location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(byteLength(t)) },
    ];
    return { name: t.name, dims: t.dims, dataType: t.dataType, dataLocation: EXTERNAL, externalData };
  }

  /** Writes the file (whole or not at all: written aside, then renamed). */
  async write(file: string): Promise<void> {
    const partial = `${file}.${process.pid}.partial`;
    const out = await fs.promises.open(partial, 'w');
    try {
      for (const [tensor, offset] of this.offsets) {
        const raw = rawBytes(this.initializers.get(tensor)!)!;
        await out.write(raw, 0, raw.byteLength, offset);
      }
      await out.truncate(this.bytes);
    } finally {
      await out.close();
    }
    await fs.promises.rename(partial, file);
  }
}

/**
 * Writes `weights` to `file` unless it is there (named by the model's hash: the same bytes), then
 * drops the weights' bytes from `model` (they are read from the file when needed: rawBytes) and
 * copies every other bytes field, so that nothing holds on to the buffer the model was decoded from.
 */
export async function storeWeights(model: ModelProto, weights: SharedWeights, file: string): Promise<void> {
  if (weights.bytes > 0 && fs.statSync(file, { throwIfNoEntry: false })?.size !== weights.bytes) await weights.write(file);
  for (const t of model.graph.initializer ?? []) {
    const offset = weights.offsetOf(t);
    if (offset === undefined) continue;
    t.stored = { file, offset, length: byteLength(t) };
    delete t.rawData;
  }
  copyBytes(model);
}

/** Replaces every Uint8Array in `value` (a decoded protobuf: plain objects and arrays) with a copy of its own. */
function copyBytes(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  for (const [key, v] of entries) {
    if (v instanceof Uint8Array) (value as Record<string | number, unknown>)[key] = new Uint8Array(v);
    else copyBytes(v);
  }
}

/** TensorProto.DataLocation.EXTERNAL */
const EXTERNAL = 1;
