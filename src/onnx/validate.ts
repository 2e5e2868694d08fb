/**
 * Checks of a decoded ONNX model that may have come from anywhere, made before anything else
 * (the graph analysis, onnxruntime) sees it, so that a hostile or broken file is refused with a
 * clear message instead of crashing, hanging, or making onnxruntime read other files:
 *
 * - no tensor anywhere (initializers, sparse initializers, node attributes, subgraphs, functions,
 *   training info) keeps its data in an external file: onnxruntime would open that path, relative
 *   to its working directory for a model given as bytes;
 * - every tensor's dims are whole numbers ≥ 0 with a sane product, and its data holds exactly
 *   that many values (a tiny file declaring a 10⁹×10⁹ weight is refused here);
 * - every Loop has a constant trip count of at most MAX_LOOP_TRIPS (an unbounded loop on the
 *   image's path would hang the shape probe at start-up);
 * - at most MAX_NODES nodes, and subgraphs nested at most MAX_SUBGRAPH_DEPTH deep.
 */
import { DataType, ModelProto, TensorProto } from './proto';

export const MAX_NODES = 100_000;
export const MAX_SUBGRAPH_DEPTH = 16;
export const MAX_LOOP_TRIPS = 10_000;
/** Values in one tensor: 2³¹ (8 GiB of float32), far over any real weight. */
export const MAX_TENSOR_VALUES = 2 ** 31;

/** Bytes per value in raw_data, by TensorProto.DataType (4-bit types: 0.5). */
const WIDTH: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  14: 8,
  15: 16,
  16: 2,
  17: 1,
  18: 1,
  19: 1,
  20: 1,
  21: 0.5,
  22: 0.5,
  23: 0.5,
};

/** Which typed field holds the values of a data type, and how many entries a value takes. */
function typedField(t: TensorProto & { uint64Data?: unknown[]; stringData?: unknown[] }): { values: unknown[] | undefined; per: number } | undefined {
  switch (t.dataType ?? DataType.FLOAT) {
    case 1:
      return { values: t.floatData, per: 1 };
    case 14:
      return { values: t.floatData, per: 2 };
    case 7:
      return { values: t.int64Data, per: 1 };
    case 11:
      return { values: t.doubleData, per: 1 };
    case 15:
      return { values: t.doubleData, per: 2 };
    case 12:
    case 13:
      return { values: t.uint64Data, per: 1 };
    case 8:
      return { values: t.stringData, per: 1 };
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 9:
    case 10:
    case 16:
    case 17:
    case 18:
    case 19:
    case 20:
      return { values: t.int32Data, per: 1 };
    default:
      return undefined; // 4-bit and unknown types: int32_data packing varies; not checked
  }
}

type AnyTensor = TensorProto & { segment?: unknown; uint64Data?: unknown[]; stringData?: unknown[] };

function checkTensor(t: AnyTensor, where: string): void {
  const name = `tensor "${t.name ?? '?'}" (${where})`;
  if (t.dataLocation === 1 || (t.externalData?.length ?? 0) > 0) {
    const location = t.externalData?.find((e) => e.key === 'location')?.value;
    throw new Error(
      `${name} keeps its data in an external file${location ? ` ("${location}")` : ''}, which convscope never reads; re-export with the weights inside the .onnx (onnx.save(model, path, save_as_external_data=False))`,
    );
  }
  const dims = (t.dims ?? []).map(Number);
  let count = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${name} has a dimension ${d}: dims must be whole numbers ≥ 0`);
    count *= d;
    if (count > MAX_TENSOR_VALUES) throw new Error(`${name} declares shape [${dims}], over ${MAX_TENSOR_VALUES} values: not a real weight`);
  }
  if (t.segment) return; // chunked tensors: onnxruntime checks them
  const raw = t.rawData?.byteLength ?? 0;
  const type = t.dataType ?? DataType.FLOAT;
  if (raw > 0) {
    const width = WIDTH[type];
    if (width !== undefined && raw !== Math.ceil(count * width)) {
      throw new Error(`${name} declares shape [${dims}] (${count} values of ${width} bytes) but holds ${raw} bytes`);
    }
    return;
  }
  const typed = typedField(t);
  if (!typed) return;
  const have = typed.values?.length ?? 0;
  if (have !== count * typed.per && !(have === 0 && count === 0)) {
    throw new Error(`${name} declares shape [${dims}] (${count} values) but holds ${have / typed.per}`);
  }
}

interface Walk {
  value: unknown;
  where: string;
  depth: number;
}

/** Throws an Error saying what is wrong with the model, or returns. */
export function checkModel(model: ModelProto): void {
  // Constant values by tensor name (initializers and Constant nodes anywhere), for Loop trip counts.
  const constants = new Map<string, AnyTensor>();
  const loops: { name: string; trips: string | undefined; where: string }[] = [];
  let nodes = 0;
  // An explicit stack: a hostile file must not exhaust the JS stack.
  const stack: Walk[] = [{ value: model, where: 'model', depth: 0 }];
  while (stack.length) {
    const { value, where, depth } = stack.pop()!;
    if (!value || typeof value !== 'object' || ArrayBuffer.isView(value)) continue;
    if (Array.isArray(value)) {
      for (const v of value) stack.push({ value: v, where, depth });
      continue;
    }
    const obj = value as Record<string, unknown>;
    if ('opType' in obj) {
      // a NodeProto
      if (++nodes > MAX_NODES) throw new Error(`the model has over ${MAX_NODES} nodes`);
      const label = `${where}, node "${(obj.name as string) || obj.opType}"`;
      const inputs = (obj.input as string[] | undefined) ?? [];
      const outputs = (obj.output as string[] | undefined) ?? [];
      if (obj.opType === 'Loop') loops.push({ name: label, trips: inputs[0] || undefined, where });
      if (obj.opType === 'Constant') {
        const t = ((obj.attribute as { name: string; t?: AnyTensor }[] | undefined) ?? []).find((a) => a.name === 'value')?.t;
        if (t && outputs[0]) constants.set(outputs[0], t);
      }
      for (const a of (obj.attribute as Record<string, unknown>[] | undefined) ?? []) {
        const attrWhere = `${label}, attribute "${a.name}"`;
        for (const key of ['t', 'tensors', 'sparseTensor', 'sparseTensors']) if (a[key]) stack.push({ value: a[key], where: attrWhere, depth });
        for (const key of ['g', 'graphs']) {
          if (!a[key]) continue;
          if (depth + 1 > MAX_SUBGRAPH_DEPTH) throw new Error(`${attrWhere}: subgraphs nested over ${MAX_SUBGRAPH_DEPTH} deep`);
          stack.push({ value: a[key], where: `subgraph "${a.name}" of node "${(obj.name as string) || obj.opType}" (depth ${depth + 1})`, depth: depth + 1 });
        }
      }
      continue;
    }
    if ('dims' in obj && !('values' in obj)) {
      // a TensorProto (a SparseTensorProto has `values`; shapes use `dim`, not `dims`)
      checkTensor(obj as AnyTensor, where);
      const t = obj as AnyTensor;
      if (t.name && !constants.has(t.name)) constants.set(t.name, t);
      continue;
    }
    for (const [key, v] of Object.entries(obj)) {
      if (key === 'docString' || key === 'metadataProps' || typeof v !== 'object') continue;
      stack.push({ value: v, where, depth });
    }
  }
  for (const loop of loops) {
    const t = loop.trips ? constants.get(loop.trips) : undefined;
    const trips = t ? constantScalar(t) : undefined;
    if (trips === undefined || !(trips >= 0 && trips <= MAX_LOOP_TRIPS)) {
      throw new Error(
        `${loop.name} is a Loop without a constant trip count of at most ${MAX_LOOP_TRIPS}${trips !== undefined ? ` (it says ${trips})` : ''}: convscope does not run loops that could run unbounded`,
      );
    }
  }
}

/** The value of a one-element integer tensor, if it is one. */
function constantScalar(t: AnyTensor): number | undefined {
  const dims = (t.dims ?? []).map(Number);
  if (dims.reduce((a, b) => a * b, 1) !== 1) return undefined;
  if (t.int64Data?.length) return Number(t.int64Data[0]);
  if (t.int32Data?.length) return Number(t.int32Data[0]);
  const raw = t.rawData;
  if (raw && raw.byteLength === 8 && (t.dataType ?? 7) === DataType.INT64) {
    return Number(new DataView(raw.buffer, raw.byteOffset, 8).getBigInt64(0, true));
  }
  return undefined;
}
