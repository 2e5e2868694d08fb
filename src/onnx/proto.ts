/**
 * ONNX protobuf (de)serialisation with protobufjs and the official onnx.proto
 * (src/onnx/onnx.proto → onnx.proto.json, see scripts/gen-onnx-proto.mjs).
 * The interfaces below name only the fields convscope reads or writes.
 */
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

/** Weights at least this large are written by encodeModel itself, straight into the output. */
const LARGE = 64 * 1024;
// Field numbers (onnx.proto) of the fields encodeModel writes by hand: ModelProto.graph,
// GraphProto.initializer, TensorProto.raw_data; each length-delimited (wire type 2).
const MODEL_GRAPH = (7 << 3) | 2;
const GRAPH_INITIALIZER = (5 << 3) | 2;
const TENSOR_RAW_DATA = (9 << 3) | 2;

/**
 * Serialises a model into one buffer, copying each large weight once: protobufjs would copy
 * it into its writer's chunks and again into the result (a graph through ViT-B/16 is 330 MB).
 * The graph's large initializers are written after its other fields, which protobuf allows.
 */
export function encodeModel(model: ModelProto): Uint8Array {
  const encode = (type: protobuf.Type, value: object) => type.encode(type.fromObject(value as Record<string, unknown>)).finish();
  const initializers = model.graph.initializer ?? [];
  const large = initializers.filter((t) => t.stored !== undefined || byteLength(t) >= LARGE);
  const head = encode(ModelProtoType, { ...model, graph: undefined });
  const graphHead = encode(GraphProtoType, { ...model.graph, initializer: initializers.filter((t) => !large.includes(t)) });
  const tensors = large.map((t) => {
    const header = encode(TensorProtoType, { ...t, rawData: undefined, stored: undefined });
    const raw = rawBytes(t)!; // read from the weights file if stored there: one weight at a time in memory
    return { header, raw, size: header.length + 1 + varintLength(raw.byteLength) + raw.byteLength };
  });
  const graphSize = graphHead.length + tensors.reduce((n, t) => n + 1 + varintLength(t.size) + t.size, 0);
  const out = new Uint8Array(head.length + 1 + varintLength(graphSize) + graphSize);
  let at = 0;
  const put = (bytes: Uint8Array) => {
    out.set(bytes, at);
    at += bytes.length;
  };
  const varint = (value: number) => {
    for (; value >= 0x80; value = Math.floor(value / 128)) out[at++] = (value % 128) | 0x80;
    out[at++] = value;
  };
  put(head);
  out[at++] = MODEL_GRAPH;
  varint(graphSize);
  put(graphHead);
  for (const t of tensors) {
    out[at++] = GRAPH_INITIALIZER;
    varint(t.size);
    put(t.header);
    out[at++] = TENSOR_RAW_DATA;
    varint(t.raw.byteLength);
    put(t.raw);
  }
  return out;
}

function varintLength(value: number): number {
  let n = 1;
  for (; value >= 0x80; value = Math.floor(value / 128)) n++;
  return n;
}
