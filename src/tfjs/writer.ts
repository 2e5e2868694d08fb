/**
 * The ONNX graph a converted TF.js model becomes, written node by node. Tensors carry their
 * Keras shape (without the batch axis); an image tensor, Keras [H, W, C], is stored as ONNX
 * [N, C, H, W], so that the whole network runs channels-first like any ONNX CNN.
 */
import { AttrValue, toAttributes } from '../compiler/builder';
import { NodeProto, TensorProto } from '../onnx/proto';
import { floatTensor, int64Tensor } from '../onnx/tensor';
import { Weight } from './files';

export interface Tensor {
  /** The ONNX tensor (and the name of the node that makes it). */
  name: string;
  /** Keras shape without the batch axis: [H, W, C] for an image (ONNX NCHW), [F] for features. */
  shape: number[];
}

export class OnnxWriter {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly taken: Set<string>;
  private readonly scalars = new Map<number, string>();

  /** `reserved`: names only rename() may give (the Keras layers' own). */
  constructor(reserved: Iterable<string>) {
    this.taken = new Set(reserved);
  }

  unique(name: string): string {
    let candidate = name;
    for (let i = 1; this.taken.has(candidate); i++) candidate = `${name}_${i}`;
    this.taken.add(candidate);
    return candidate;
  }

  /** A node of one output, named like the output tensor; returns the tensor. */
  node(opType: string, inputs: string[], name: string, attrs: Record<string, AttrValue> = {}): string {
    const output = this.unique(name);
    this.nodes.push({ opType, name: output, input: inputs, output: [output], attribute: toAttributes(attrs) });
    return output;
  }

  /** Renames the node that makes `tensor` (and the tensor) to a reserved name. */
  rename(tensor: string, name: string): string {
    const node = this.nodes.find((n) => n.output[0] === tensor);
    if (!node) throw new Error(`no node makes ${tensor}`);
    if (this.nodes.some((n) => n.input.includes(tensor))) throw new Error(`${tensor} is already read`);
    node.name = name;
    node.output[0] = name;
    return name;
  }

  floats(name: string, dims: number[], values: ArrayLike<number>): string {
    const unique = this.unique(name);
    this.initializers.push(floatTensor(unique, dims, values));
    return unique;
  }

  ints(name: string, values: number[]): string {
    const unique = this.unique(name);
    this.initializers.push(int64Tensor(unique, [values.length], values));
    return unique;
  }

  /** A float scalar, shared by every node that needs the same value. */
  scalar(value: number): string {
    let name = this.scalars.get(value);
    if (!name) {
      name = this.floats(`const/${value}`, [], [value]);
      this.scalars.set(value, name);
    }
    return name;
  }
}

/** `w` with its axes permuted: out.shape[i] = w.shape[perm[i]]. */
export function permute(w: Weight, perm: number[]): Weight {
  const shape = perm.map((p) => w.shape[p]);
  const strides = w.shape.map((_, i) => w.shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const outStrides = perm.map((p) => strides[p]);
  const values = new Float32Array(w.values.length);
  const index = new Array(shape.length).fill(0);
  for (let i = 0; i < values.length; i++) {
    let source = 0;
    for (let a = 0; a < shape.length; a++) source += index[a] * outStrides[a];
    values[i] = w.values[source];
    for (let a = shape.length - 1; a >= 0 && ++index[a] === shape[a]; a--) index[a] = 0;
  }
  return { shape, values };
}
