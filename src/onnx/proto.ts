/**
 * ONNX protobuf (de)serialisation with protobufjs and the official onnx.proto
 * (src/onnx/onnx.proto → onnx.proto.json, see scripts/gen-onnx-proto.mjs).
 * The interfaces below name only the fields convscope reads or writes.
 */
import fs from 'node:fs';
import protobuf from 'protobufjs';
import descriptor from './onnx.proto.json';
import { byteLength, rawBytes, type StoredBytes } from './weights';

const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
const ModelProtoType = root.lookupType('onnx.ModelProto');
const GraphProtoType = root.lookupType('onnx.GraphProto');
const TensorProtoType = root.lookupType('onnx.TensorProto');

export enum DataType {
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  INT32 = 6,
  INT64 = 7,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
}

export enum AttributeType {
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  FLOATS = 6,
  INTS = 7,
}

export interface TensorProto {
  name?: string;
  dims?: number[];
  dataType?: number;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  rawData?: Uint8Array;
  dataLocation?: number;
  externalData?: { key: string; value: string }[];
  /** convscope's own (not ONNX's): where rawData lies once it is dropped from memory (weights.ts storeWeights). */
  stored?: StoredBytes;
}

export interface AttributeProto {
  name: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  floats?: number[];
  ints?: number[];
  g?: GraphProto;
  graphs?: GraphProto[];
}

export interface NodeProto {
  name?: string;
  opType: string;
  domain?: string;
  input: string[];
  output: string[];
  attribute?: AttributeProto[];
}

export interface Dim {
  dimValue?: number;
  dimParam?: string;
}

export interface ValueInfoProto {
  name: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: Dim[] } } };
}

export interface GraphProto {
  name?: string;
  node: NodeProto[];
  initializer?: TensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
}

export interface ModelProto {
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  opsetImport?: { domain?: string; version: number }[];
  graph: GraphProto;
}

/** Decodes an .onnx file; int64 fields become JS numbers, bytes stay Uint8Array. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const message = ModelProtoType.decode(bytes);
  const model = ModelProtoType.toObject(message, { longs: Number, arrays: true, defaults: false }) as ModelProto;
  if (!model.graph) throw new Error('no graph in the file');
  return model;
}

/** Weights at least this large are parts of their own in encodeModelParts (not copied through protobufjs). */
const LARGE = 64 * 1024;
// Field numbers (onnx.proto) of the fields encodeModelParts writes by hand: ModelProto.graph,
// GraphProto.initializer, TensorProto.raw_data; each length-delimited (wire type 2).
const MODEL_GRAPH = (7 << 3) | 2;
const GRAPH_INITIALIZER = (5 << 3) | 2;
const TENSOR_RAW_DATA = (9 << 3) | 2;

/** A piece of a serialised model: bytes, or a weight read from its weights file when the piece is written. */
export type ModelPart = Uint8Array | (() => Uint8Array);

/**
 * Serialises a model as parts to be written one after the other: the large weights are the
 * model's own arrays, or read from the model's weights file when written (weights.ts), between
 * the bytes of everything else. A file is written from them with one weight in memory at a time
 * (a graph through AlexNet's classifier is 244 MB, through ViT-B/16 330 MB); protobufjs would copy
 * each weight into its writer's chunks and again into its result. The graph's large initializers
 * are written after its other fields, which protobuf allows.
 */
export function encodeModelParts(model: ModelProto): { parts: ModelPart[]; bytes: number } {
  const encode = (type: protobuf.Type, value: object) => type.encode(type.fromObject(value as Record<string, unknown>)).finish();
  const initializers = model.graph.initializer ?? [];
  const large = initializers.filter((t) => t.stored !== undefined || byteLength(t) >= LARGE);
  const head = encode(ModelProtoType, { ...model, graph: undefined });
  const graphHead = encode(GraphProtoType, { ...model.graph, initializer: initializers.filter((t) => !large.includes(t)) });
  const parts: ModelPart[] = [];
  const tensors = large.map((t) => {
    const header = encode(TensorProtoType, { ...t, rawData: undefined, stored: undefined });
    const length = byteLength(t);
    return { t, header, length, size: header.length + 1 + varintLength(length) + length };
  });
  const graphSize = graphHead.length + tensors.reduce((n, t) => n + 1 + varintLength(t.size) + t.size, 0);
  parts.push(head, Uint8Array.from([MODEL_GRAPH, ...varint(graphSize)]), graphHead);
  for (const { t, header, length, size } of tensors) {
    parts.push(Uint8Array.from([GRAPH_INITIALIZER, ...varint(size)]), header, Uint8Array.from([TENSOR_RAW_DATA, ...varint(length)]));
    parts.push(t.rawData ?? (() => rawBytes(t)!)); // read from the weights file if stored there
  }
  return { parts, bytes: head.length + 1 + varintLength(graphSize) + graphSize };
}

/** encodeModelParts as one buffer: each large weight copied once. */
export function encodeModel(model: ModelProto): Uint8Array {
  const { parts, bytes } = encodeModelParts(model);
  return concatParts(parts, bytes);
}

/** Parts one after the other, in a new array of `bytes`. */
export function concatParts(parts: ModelPart[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const part of parts) {
    const b = partBytes(part);
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

/** Writes parts one after the other to `file`, one weight in memory at a time. */
export async function writeParts(file: string, parts: ModelPart[]): Promise<void> {
  const out = await fs.promises.open(file, 'w');
  try {
    for (const part of parts) {
      const b = partBytes(part);
      for (let at = 0; at < b.byteLength;) at += (await out.write(b, at, b.byteLength - at)).bytesWritten;
    }
  } finally {
    await out.close();
  }
}

/** A part's bytes (a stored weight read now). */
function partBytes(part: ModelPart): Uint8Array {
  return typeof part === 'function' ? part() : part;
}

/** A protobuf varint's bytes. */
function varint(value: number): number[] {
  const bytes: number[] = [];
  for (; value >= 0x80; value = Math.floor(value / 128)) bytes.push((value % 128) | 0x80);
  bytes.push(value);
  return bytes;
}

function varintLength(value: number): number {
  return varint(value).length;
}
