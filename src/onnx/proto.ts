/**
 * ONNX protobuf (de)serialisation with protobufjs and the official onnx.proto
 * (src/onnx/onnx.proto → onnx.proto.json, see scripts/gen-onnx-proto.mjs).
 * The interfaces below name only the fields convscope reads or writes.
 */
import protobuf from 'protobufjs';
import descriptor from './onnx.proto.json';

const root = protobuf.Root.fromJSON(descriptor as protobuf.INamespace);
const ModelProtoType = root.lookupType('onnx.ModelProto');

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

export function encodeModel(model: ModelProto): Uint8Array {
  return ModelProtoType.encode(ModelProtoType.fromObject(model as unknown as Record<string, unknown>)).finish();
}
