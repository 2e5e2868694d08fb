/**
 * A model's large weights in one file that every compiled graph of the model refers to (ONNX
 * external data), instead of each graph carrying its own copy. ONNX Runtime's CPU provider maps
 * such a file into memory and computes on the mapped pages: the sessions of one model then share
 * one copy of its weights (the page cache's), where with the weights inside each graph every
 * session parsed and kept its own (measured 240–640 MB per session of AlexNet's and VGG's graphs).
 */
import fs from 'node:fs';
import type { TensorProto } from './proto';

/** Weights at least this large go to the file; smaller ones stay inside the graphs. */
const SHARED_BYTES = 64 * 1024;
/** Each weight starts at a multiple of this (the runtime computes on the mapped bytes in place). */
const ALIGN = 64;
/** The folder, beside the graphs' files, that holds the weight files (ONNX Runtime reads external data only below a graph's folder). */
export const WEIGHTS_FOLDER = 'weights';

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
      const length = t.rawData?.byteLength ?? 0;
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

  /** `t` as a reference into the file, or undefined if it is not there. */
  reference(t: TensorProto): TensorProto | undefined {
    const offset = this.offsets.get(t.name ?? '');
    if (offset === undefined || this.initializers.get(t.name!) !== t) return undefined;
    const externalData = [
      { key: 'location', value: this.location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(t.rawData!.byteLength) },
    ];
    return { name: t.name, dims: t.dims, dataType: t.dataType, dataLocation: EXTERNAL, externalData };
  }

  /** Writes the file (whole or not at all: written aside, then renamed). */
  async write(file: string): Promise<void> {
    const partial = `${file}.${process.pid}.partial`;
    const out = await fs.promises.open(partial, 'w');
    try {
      for (const [tensor, offset] of this.offsets) {
        const raw = this.initializers.get(tensor)!.rawData!;
        await out.write(raw, 0, raw.byteLength, offset);
      }
      await out.truncate(this.bytes);
    } finally {
      await out.close();
    }
    await fs.promises.rename(partial, file);
  }
}

/** TensorProto.DataLocation.EXTERNAL */
const EXTERNAL = 1;
