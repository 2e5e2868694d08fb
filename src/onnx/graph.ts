/**
 * A parsed ONNX graph with what every later stage needs: nodes in topological order with
 * unique display names, initializers, constant values, element types and the "data path"
 * (the float tensors that depend on the image input: the network's activations).
 */
import path from 'node:path';
import { AttributeProto, AttributeType, DataType, decodeModel, ModelProto, NodeProto, TensorProto } from './proto';
import { toNumbers } from './tensor';
import { SharedWeights, storeWeights } from './weights';

export interface GraphNode {
  /** Position in topological order. */
  index: number;
  /** Every tensor the node reads: its inputs and what its subgraphs (If, Loop) read from outside. */
  reads: string[];
  /** The node's name, or `<op>_<index>` when the file leaves it empty; unique in the graph. */
  name: string;
  op: string;
  proto: NodeProto;
}

export class OnnxGraph {
  readonly nodes: GraphNode[];
  readonly initializers = new Map<string, TensorProto>();
  /** Values of small constant tensors: initializers and Constant nodes (shapes, clip bounds…). */
  private readonly constantCache = new Map<string, number[]>();
  readonly elemType = new Map<string, number>();
  readonly producer = new Map<string, GraphNode>();
  readonly consumers = new Map<string, GraphNode[]>();
  /** Float tensors computed from the image input: the activations. */
  readonly dataPath = new Set<string>();
  readonly inputName: string;
  /** The image input's declared shape; symbolic or missing dims are null. */
  readonly inputDims: (number | null)[];
  readonly opset: number;
  readonly outputNames: string[];
  /** The model's large weights in one file, once storeWeights() has written it: compiling reads them from there. */
  weights?: SharedWeights;
  /** That file's path (none if the model has no large weights). */
  weightsFile?: string;
  /** The file of large weights its compiled graphs refer to, once shareWeights() is called; until then graphs carry their weights. */
  sharedWeights?: SharedWeights;

  constructor(readonly proto: ModelProto) {
    const graph = proto.graph;
    for (const t of graph.initializer ?? []) {
      if (t.name) this.initializers.set(t.name, t);
    }
    const inputs = (graph.input ?? []).filter((i) => !this.initializers.has(i.name));
    if (inputs.length !== 1) {
      throw new Error(`expected one image input, the graph has ${inputs.length}: ${inputs.map((i) => i.name).join(', ')}`);
    }
    const input = inputs[0];
    this.inputName = input.name;
    const tensorType = input.type?.tensorType;
    if ((tensorType?.elemType ?? DataType.FLOAT) !== DataType.FLOAT) {
      throw new Error(`the input "${input.name}" has element type ${tensorType?.elemType}; convscope needs float32 images`);
    }
    this.inputDims = (tensorType?.shape?.dim ?? []).map((d) => (d.dimValue ? Number(d.dimValue) : null));
    if (this.inputDims.length !== 4) {
      throw new Error(`the input "${input.name}" has rank ${this.inputDims.length}; convscope needs an image batch [N, C, H, W]`);
    }
    const opsetEntry = (proto.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
    this.opset = opsetEntry ? Number(opsetEntry.version) : 1;
    this.outputNames = (graph.output ?? []).map((o) => o.name);

    this.nodes = sortTopologically(graph.node, new Set([this.inputName, ...this.initializers.keys()]));
    const used = new Set<string>();
    for (const node of this.nodes) {
      let name = node.proto.name || `${node.op}_${node.index}`;
      while (used.has(name)) name = `${name}_${node.index}`;
      used.add(name);
      node.name = name;
      for (const out of node.proto.output) if (out) this.producer.set(out, node);
      for (const inp of node.reads) {
        const list = this.consumers.get(inp) ?? [];
        list.push(node);
        this.consumers.set(inp, list);
      }
    }
    this.inferTypes();
  }

  /** From now on compiled graphs refer to the model's large weights in one file named `name` (weights.ts), which whoever loads them writes. */
  shareWeights(name: string): void {
    this.sharedWeights = this.weights?.name === name ? this.weights : new SharedWeights(name, this.initializers);
  }

  /** Writes the large weights to `file` (unless there) and keeps them there, not in memory (weights.ts storeWeights). */
  async storeWeights(file: string): Promise<void> {
    this.weights = new SharedWeights(path.basename(file), this.initializers);
    await storeWeights(this.proto, this.weights, file);
    if (this.weights.bytes > 0) this.weightsFile = file;
  }

  static parse(bytes: Uint8Array): OnnxGraph {
    return new OnnxGraph(decodeModel(bytes));
  }

  /** Element types by a small propagation; the data path follows from it. */
  private inferTypes(): void {
    this.elemType.set(this.inputName, DataType.FLOAT);
    this.dataPath.add(this.inputName);
    for (const [name, t] of this.initializers) this.elemType.set(name, t.dataType ?? DataType.FLOAT);
    for (const node of this.nodes) {
      const p = node.proto;
      const firstType = this.elemType.get(p.input[0]) ?? DataType.FLOAT;
      let type: number;
      switch (node.op) {
        case 'Shape':
        case 'Size':
        case 'ArgMax':
        case 'ArgMin':
        case 'NonZero':
          type = DataType.INT64;
          break;
        case 'Cast':
          type = attrInt(p, 'to', DataType.FLOAT);
          break;
        case 'Constant':
          type = attrTensor(p, 'value')?.dataType ?? DataType.FLOAT;
          break;
        case 'ConstantOfShape':
          type = attrTensor(p, 'value')?.dataType ?? DataType.FLOAT;
          break;
        case 'Where': // the type of its values, not of its (boolean) condition
          type = this.elemType.get(p.input[1]) ?? DataType.FLOAT;
          break;
        case 'If':
          type = attr(p, 'then_branch')?.g?.output?.[0]?.type?.tensorType?.elemType ?? DataType.FLOAT;
          break;
        case 'Equal':
        case 'Greater':
        case 'Less':
        case 'Not':
        case 'And':
        case 'Or':
          type = DataType.BOOL;
          break;
        default:
          type = firstType;
      }
      for (const out of p.output) if (out) this.elemType.set(out, type);
      const fromImage = node.reads.some((i) => this.dataPath.has(i));
      if (fromImage && type === DataType.FLOAT && node.op !== 'Shape') {
        for (const out of p.output) if (out) this.dataPath.add(out);
      }
    }
  }

  /** The node with this display name. */
  node(name: string): GraphNode | undefined {
    return this.nodes.find((n) => n.name === name);
  }

  /**
   * Records the value of a tensor that shape subgraphs compute (Shape → Gather → … → Slice's
   * ends) but that is fixed for the model's input size: the backward rules read it as a constant.
   */
  fold(tensor: string, values: number[]): void {
    if (!this.dataPath.has(tensor)) this.constantCache.set(tensor, values);
  }

  /** Whether a tensor is given in the file (an initializer or a Constant node's output), without decoding it. */
  isConstant(tensor: string): boolean {
    return this.initializers.has(tensor) || this.producer.get(tensor)?.op === 'Constant';
  }

  /** Value of a constant tensor (initializer, Constant node, or folded), or undefined if it is computed. */
  constant(tensor: string): number[] | undefined {
    if (!tensor) return undefined;
    const cached = this.constantCache.get(tensor);
    if (cached) return cached;
    let t = this.initializers.get(tensor);
    const producer = this.producer.get(tensor);
    if (!t && producer?.op === 'Constant') t = attrTensor(producer.proto, 'value');
    if (!t) return undefined;
    const values = toNumbers(t);
    this.constantCache.set(tensor, values);
    return values;
  }

  /** Inputs of a node that are activations (not weights, shapes or other constants). */
  dataInputs(node: GraphNode): string[] {
    return node.proto.input.filter((i) => i && this.dataPath.has(i));
  }

  /** Nodes whose first output is an activation: the network's layers. */
  dataNodes(): GraphNode[] {
    return this.nodes.filter((n) => this.dataPath.has(n.proto.output[0]));
  }
}

/** Tensors a node reads, including those its subgraphs take from the enclosing scope. */
function readsOf(proto: NodeProto): string[] {
  const reads = proto.input.filter(Boolean);
  for (const a of proto.attribute ?? []) {
    for (const sub of [a.g, ...(a.graphs ?? [])]) {
      if (!sub) continue;
      const local = new Set([...(sub.input ?? []).map((i) => i.name), ...(sub.initializer ?? []).map((t) => t.name ?? '')]);
      for (const n of sub.node) {
        for (const r of readsOf(n)) if (!local.has(r)) reads.push(r);
        for (const o of n.output) local.add(o);
      }
    }
  }
  return [...new Set(reads)];
}

/**
 * Nodes in topological order. The order is that of repeated passes over the file's node list,
 * each taking, in file order, every node whose inputs are ready by then (so a file already in
 * topological order keeps its order): computed in O((nodes + edges) · log nodes), as a hostile
 * file with 100 000 nodes in reverse order must not take quadratic time.
 */
function sortTopologically(protos: NodeProto[], available: Set<string>): GraphNode[] {
  const reads = protos.map((proto) => readsOf(proto));
  // Per node, how many distinct tensors it still waits for; per tensor, the nodes waiting.
  const missing = new Int32Array(protos.length);
  const waiting = new Map<string, number[]>();
  reads.forEach((list, k) => {
    for (const t of list) {
      if (available.has(t)) continue;
      missing[k]++;
      const w = waiting.get(t);
      if (w) w.push(k);
      else waiting.set(t, [k]);
    }
  });
  const ready = new Set(available);
  let current = new MinHeap();
  let next: number[] = [];
  for (let k = 0; k < protos.length; k++) if (missing[k] === 0) current.push(k);
  const sorted: GraphNode[] = [];
  while (current.size) {
    let last = -1;
    while (current.size) {
      const k = current.pop();
      last = k;
      const proto = protos[k];
      sorted.push({ index: sorted.length, name: proto.name ?? '', op: proto.opType, proto, reads: reads[k] });
      for (const o of proto.output) {
        if (!o || ready.has(o)) continue;
        ready.add(o);
        for (const j of waiting.get(o) ?? []) {
          if (--missing[j] === 0) {
            // Later in the file: the same pass reaches it; earlier: the next pass does.
            if (j > last) current.push(j);
            else next.push(j);
          }
        }
        waiting.delete(o);
      }
    }
    current = new MinHeap(next);
    next = [];
  }
  if (sorted.length < protos.length) {
    // Name the root cause: a tensor no node produces, or else a cycle.
    const produced = new Set(protos.flatMap((p) => p.output));
    const stuck = protos.map((_, i) => i).filter((i) => missing[i] > 0);
    for (const k of stuck) {
      const lacking = reads[k].filter((t) => !ready.has(t) && !produced.has(t));
      if (lacking.length) throw new Error(`node "${protos[k].name || protos[k].opType}" reads ${lacking.join(', ')}, which nothing produces`);
    }
    const k = stuck[0];
    const waits = reads[k].filter((t) => !ready.has(t));
    throw new Error(`node "${protos[k].name || protos[k].opType}" waits for ${waits.join(', ')}, which depend on it: the graph has a cycle`);
  }
  return sorted;
}

/** A binary min-heap of node positions. */
class MinHeap {
  private readonly items: number[] = [];
  constructor(initial: number[] = []) {
    for (const v of initial) this.push(v);
  }
  get size(): number {
    return this.items.length;
  }
  push(v: number): void {
    const a = this.items;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent] <= a[i]) break;
      [a[parent], a[i]] = [a[i], a[parent]];
      i = parent;
    }
  }
  pop(): number {
    const a = this.items;
    const top = a[0];
    const end = a.pop()!;
    if (a.length) {
      a[0] = end;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l] < a[m]) m = l;
        if (r < a.length && a[r] < a[m]) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

// ---- attributes ---------------------------------------------------------------------------

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a?.f !== undefined ? a.f : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a && (a.type === AttributeType.INTS || a.ints) ? (a.ints ?? []).map(Number) : undefined;
}

export function attrString(node: NodeProto, name: string, fallback: string): string {
  const a = attr(node, name);
  return a?.s ? Buffer.from(a.s).toString('utf8') : fallback;
}

export function attrTensor(node: NodeProto, name: string): TensorProto | undefined {
  return attr(node, name)?.t;
}
