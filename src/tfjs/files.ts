/**
 * Reads a TensorFlow.js layers model from its folder: `model.json` (the Keras topology and the
 * weights manifest) and the weight shards it lists, decoded as TF.js decodes them (float32, or
 * quantized to uint8/uint16 with a scale and min, or float16). The files may come from anywhere:
 * shard paths must stay inside the folder, and the whole is bounded like an .onnx file.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface Weight {
  shape: number[];
  values: Float32Array;
}

export interface LayersModelFiles {
  /** `modelTopology` (its `model_config` for models converted from Keras): {class_name, config}. */
  topology: { class_name?: unknown; config?: unknown };
  /** By the manifest's names, e.g. `conv1/kernel`. */
  weights: Map<string, Weight>;
  /** Over model.json and the shards, in manifest order: the model's identity for caches. */
  sha256: string;
  bytes: number;
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}

/** Bytes per stored value. */
const WIDTH: Record<string, number> = { float32: 4, uint8: 1, uint16: 2, float16: 2 };

export function readLayersModelFiles(dir: string, maxBytes: number): LayersModelFiles {
  const hash = createHash('sha256');
  let total = 0;
  const read = (file: string, what: string): Buffer => {
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    // A FIFO or device would block the read forever.
    if (!stat?.isFile()) throw new Error(`${what} is missing or not a regular file`);
    total += stat.size;
    if (total > maxBytes) {
      throw new Error(`the model's files are over ${(total / 2 ** 20).toFixed(0)} MB, over the limit of ${(maxBytes / 2 ** 20).toFixed(0)} MB (MAX_MODEL_MB)`);
    }
    const bytes = fs.readFileSync(file);
    hash.update(bytes);
    return bytes;
  };

  let json: { format?: unknown; modelTopology?: { model_config?: unknown }; weightsManifest?: unknown };
  try {
    json = JSON.parse(read(path.join(dir, 'model.json'), 'model.json').toString('utf8'));
  } catch (e) {
    throw new Error(`model.json: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null) throw new Error('model.json is not a JSON object');
  if (json.format === 'graph-model') {
    throw new Error(
      'model.json is a TensorFlow.js graph model (a TensorFlow GraphDef): convscope reads layers models only; convert the SavedModel to ONNX with tf2onnx instead',
    );
  }
  if (json.format !== undefined && json.format !== 'layers-model') throw new Error(`model.json has format "${json.format}", expected "layers-model"`);
  const topology = (json.modelTopology?.model_config ?? json.modelTopology) as LayersModelFiles['topology'] | undefined;
  if (!topology || typeof topology !== 'object' || typeof topology.class_name !== 'string') {
    throw new Error('model.json has no Keras model topology (modelTopology.class_name)');
  }

  const weights = new Map<string, Weight>();
  const groups = json.weightsManifest ?? [];
  if (!Array.isArray(groups)) throw new Error('model.json: weightsManifest must be an array');
  for (const group of groups as { paths?: unknown; weights?: unknown }[]) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group.weights))
      throw new Error('model.json: each weightsManifest entry needs "paths" and "weights" arrays');
    // A group's weights are packed one after another across its shards.
    const data = Buffer.concat(group.paths.map((p: unknown) => read(shardPath(dir, p), `weight file "${p}"`)));
    let offset = 0;
    for (const spec of group.weights as WeightSpec[]) {
      const { weight, bytes } = decodeWeight(spec, data, offset);
      if (weights.has(spec.name)) throw new Error(`model.json lists the weight "${spec.name}" twice`);
      weights.set(spec.name, weight);
      offset += bytes;
    }
  }
  return { topology, weights, sha256: hash.digest('hex'), bytes: total };
}

/** A shard's path, which must name a file inside the model's folder. */
function shardPath(dir: string, p: unknown): string {
  if (typeof p !== 'string' || p === '' || path.isAbsolute(p)) throw new Error(`weight file path ${JSON.stringify(p)} is not a relative path`);
  const full = path.resolve(dir, p);
  if (!full.startsWith(path.resolve(dir) + path.sep)) throw new Error(`weight file path "${p}" leaves the model's folder`);
  return full;
}

function decodeWeight(spec: WeightSpec, data: Buffer, offset: number): { weight: Weight; bytes: number } {
  const name = JSON.stringify(spec?.name);
  const shape = spec?.shape;
  if (typeof spec?.name !== 'string' || !Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new Error(`model.json: weight ${name} needs a name and a shape of whole numbers`);
  }
  if (spec.dtype !== 'float32') throw new Error(`weight ${name} has dtype ${spec.dtype}; convscope reads float32 weights`);
  const stored = spec.quantization?.dtype ?? 'float32';
  const width = WIDTH[stored];
  if (!width) throw new Error(`weight ${name} is quantized as ${stored}; TF.js quantizes as uint8, uint16 or float16`);
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = count * width;
  if (offset + bytes > data.byteLength) throw new Error(`weight ${name} [${shape}] runs past the end of its weight files (${data.byteLength} bytes)`);
  const view = new DataView(data.buffer, data.byteOffset + offset, bytes);
  const values = new Float32Array(count);
  if (stored === 'float32') {
    for (let i = 0; i < count; i++) values[i] = view.getFloat32(i * 4, true);
  } else if (stored === 'float16') {
    for (let i = 0; i < count; i++) values[i] = halfToFloat(view.getUint16(i * 2, true));
  } else {
    const { scale, min } = spec.quantization!;
    if (typeof scale !== 'number' || typeof min !== 'number') throw new Error(`weight ${name} is quantized as ${stored} without a scale and min`);
    for (let i = 0; i < count; i++) values[i] = (stored === 'uint8' ? view.getUint8(i) : view.getUint16(i * 2, true)) * scale + min;
  }
  return { weight: { shape, values }, bytes };
}

/** IEEE 754 half precision → number (subnormals, infinities and NaN included). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
