/** Forward graphs: the model cut at the requested activations, each returned as an output. */
import { normalisationTable, sourceChannel } from '../images/preprocess';
import { OnnxGraph } from '../onnx/graph';
import { DataType, ModelPart, ValueInfoProto } from '../onnx/proto';
import type { Preprocessing } from '../model';
import type { SharedWeights } from '../onnx/weights';
import { ancestors, batchInput, GraphBuilder } from './builder';
import { asUnitGrid, seedShape } from './units';

export interface CompiledGraph {
  /** The graph as parts written one after the other (encodeModelParts): whole in memory only if `model` is read. */
  parts: ModelPart[];
  /** Its size in bytes. */
  bytes: number;
  /** The graph as one array, made when read. */
  readonly model: Uint8Array;
  /** Output tensor names, in the order of the request. */
  outputs: string[];
  /** The file of the model's weights the graph refers to (OnnxGraph.shareWeights), if it does: it must be written beside the graph before the graph loads. */
  sharedWeights?: SharedWeights;
  /** The bytes of the shared weights the graph refers to. */
  sharedBytes?: number;
  /** The bytes of those that ONNX Runtime copies when it loads the graph (folding constant computations on them). */
  foldedBytes?: number;
}

export function compileForward(graph: OnnxGraph, tensors: string[]): CompiledGraph {
  const b = new GraphBuilder(graph);
  for (const node of ancestors(graph, tensors)) b.copy(node);
  // A graph output can't be the graph input itself: an Identity gives it a new name.
  const outputs = tensors.map((t) => (t === graph.inputName ? b.op('Identity', [t]) : t));
  return b.build([batchInput(graph.inputName, graph.inputDims.slice(1))], outputs);
}

/** Float weights at least this big are zeros made at run time in the shape probe. */
const PROBE_ZEROED_BYTES = 64 * 1024;

/**
 * The load-time probe's graph (registry/models.ts): `tensors` as compileForward computes them,
 * except that big float weights are zeros made just before their first use (ConstantOfShape).
 * The probe reads only the shapes of float activations and the values of `values` (small shape
 * computations), so zeros stand in exactly for every weight those values do not read; the model's
 * weights are then not held twice more (the encoded graph, onnxruntime's copy) while it loads.
 */
export function compileShapeProbe(graph: OnnxGraph, tensors: string[], values: string[]): CompiledGraph {
  const read = valueSources(graph, values);
  const b = new GraphBuilder(graph);
  const zeros = new Map<string, string>();
  const zeroed = (t: string) => {
    const w = graph.initializers.get(t);
    if (!w || read.has(t) || (w.dataType ?? DataType.FLOAT) !== DataType.FLOAT) return t;
    const dims = (w.dims ?? []).map(Number);
    if (4 * dims.reduce((a, d) => a * d, 1) < PROBE_ZEROED_BYTES) return t;
    let made = zeros.get(t);
    if (!made) zeros.set(t, (made = b.op('ConstantOfShape', [b.ints(dims)])));
    return made;
  };
  for (const node of ancestors(graph, tensors)) b.copy({ ...node, input: node.input.map(zeroed) });
  const outputs = tensors.map((t) => (t === graph.inputName ? b.op('Identity', [t]) : t));
  return b.build([batchInput(graph.inputName, graph.inputDims.slice(1))], outputs, [], { inline: true }); // loaded from its bytes
}

/** The tensors whose values `values` are computed from (through Shape and Size only shapes are read). */
function valueSources(graph: OnnxGraph, values: string[]): Set<string> {
  const read = new Set<string>();
  const visit = (t: string) => {
    if (!t || read.has(t)) return;
    read.add(t);
    const node = graph.producer.get(t);
    if (node && node.op !== 'Shape' && node.op !== 'Size') node.proto.input.forEach(visit);
  };
  values.forEach(visit);
  return read;
}

/**
 * For the top-k index: per activation, each channel's spatial maximum and the flat position of
 * its first occurrence (as float32, exact below 2^24), [N, C] each — so only 2·C numbers per
 * image and layer leave the runtime. Dense [N, F] activations are their own maxima, at 0;
 * token layers [N, T, D] are D channels over T positions (units.ts).
 */
export function compileChannelMaxima(graph: OnnxGraph, shapes: Map<string, number[]>, tensors: string[], pixels?: Preprocessing): CompiledGraph {
  const b = new GraphBuilder(graph);
  const input = pixels ? pixelInput(b, pixels) : batchInput(graph.inputName, graph.inputDims.slice(1));
  for (const node of ancestors(graph, tensors)) b.copy(node);
  const outputs: string[] = [];
  for (const t of tensors) {
    const shape = shapes.get(t)!;
    const [C, H, W] = seedShape(shape);
    const flat = b.reshape(asUnitGrid(b, t, shape), [-1, C, H * W]);
    outputs.push(b.reduceMax(flat, [2], 0));
    outputs.push(b.op('Cast', [b.op('ArgMax', [flat], { axis: 2, keepdims: 0 })], { to: 1 }));
  }
  return b.build([input], outputs);
}

/** The input of graphs that take decoded 8-bit pixels [B, H, W, C] (a quarter of the floats' bytes). */
export const PIXELS_INPUT = 'cs_pixels';

/**
 * Makes the model's input from PIXELS_INPUT inside the graph, by the same table lookup as
 * preprocess() (the same float32s): channels first, then table[c·256 + v].
 */
function pixelInput(b: GraphBuilder, p: Preprocessing): ValueInfoProto {
  const table = normalisationTable(p);
  const C = table.length / 256;
  let planes = b.op('Transpose', [PIXELS_INPUT], { perm: [0, 3, 1, 2] });
  const sources = Array.from({ length: C }, (_, c) => sourceChannel(p, c));
  if (sources.some((s, c) => s !== c)) planes = b.op('Gather', [planes, b.ints(sources)], { axis: 1 });
  const at = b.op('Add', [
    b.op('Cast', [planes], { to: DataType.INT64 }),
    b.ints(
      Array.from({ length: C }, (_, c) => c * 256),
      [1, C, 1, 1],
    ),
  ]);
  b.copy({ opType: 'Gather', name: 'cs/normalise', input: [b.floats(table), at], output: [b.source.inputName], attribute: [] });
  return batchInput(PIXELS_INPUT, [p.height, p.width, C], DataType.UINT8, 'B');
}
