import { DataType, TensorProto } from './proto';
import { rawBytes } from './weights';

/** An initializer's values as float32 (weights, biases, BN statistics; a boolean mask as 0/1). */
export function toFloat32(t: TensorProto): Float32Array {
  const count = (t.dims ?? []).reduce((a, b) => a * b, 1);
  const type = t.dataType ?? DataType.FLOAT;
  if (t.dataLocation === 1 || (t.externalData?.length ?? 0) > 0) {
    throw new Error(`tensor "${t.name}" keeps its data in an external file, which convscope does not read`);
  }
  const raw = rawBytes(t);
  if (raw && raw.byteLength > 0) {
    if (type === DataType.FLOAT && raw.byteLength === count * 4) return new Float32Array(new Uint8Array(raw).buffer);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float32Array(count);
    const width = { [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.INT64]: 8, [DataType.INT32]: 4, [DataType.BOOL]: 1 }[type];
    if (!width) throw new Error(`tensor "${t.name}" has data type ${type}, expected a float, integer or boolean tensor`);
    if (raw.byteLength !== count * width) {
      throw new Error(`tensor "${t.name}" holds ${raw.byteLength} bytes, its shape [${t.dims}] needs ${count * width}`);
    }
    for (let i = 0; i < count; i++) {
      if (type === DataType.FLOAT) out[i] = view.getFloat32(i * 4, true);
      else if (type === DataType.DOUBLE) out[i] = view.getFloat64(i * 8, true);
      else if (type === DataType.INT64) out[i] = Number(view.getBigInt64(i * 8, true));
      else if (type === DataType.BOOL) out[i] = view.getUint8(i);
      else out[i] = view.getInt32(i * 4, true);
    }
    return out;
  }
  const values = t.floatData?.length ? t.floatData : t.doubleData?.length ? t.doubleData : t.int64Data?.length ? t.int64Data : (t.int32Data ?? []);
  if (values.length !== count) {
    throw new Error(`tensor "${t.name}" holds ${values.length} values, its shape [${t.dims}] needs ${count}`);
  }
  return Float32Array.from(values);
}

/** Integer tensors (Reshape shapes, Clip bounds, …) as plain numbers. */
export function toNumbers(t: TensorProto): number[] {
  return Array.from(toFloat32(t));
}

export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  const data = Float32Array.from(values);
  return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer) };
}

export function int64Tensor(name: string, dims: number[], values: number[]): TensorProto {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { name, dims, dataType: DataType.INT64, rawData: new Uint8Array(data.buffer) };
}
