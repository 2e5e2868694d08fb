/** Forward graphs: the model cut at the requested activations, each returned as an output. */
import { normalisationTable, sourceChannel } from '../images/preprocess';
import { OnnxGraph } from '../onnx/graph';
import { DataType, ValueInfoProto } from '../onnx/proto';
import type { Preprocessing } from '../model';
import { ancestors, batchInput, GraphBuilder } from './builder';
import { asUnitGrid, seedShape } from './units';

export interface CompiledGraph {
  model: Uint8Array;
  /** Output tensor names, in the order of the request. */
  outputs: string[];
}

export function compileForward(graph: OnnxGraph, tensors: string[]): CompiledGraph {
  const b = new GraphBuilder(graph);
  for (const node of ancestors(graph, tensors)) b.copy(node);
  // A graph output can't be the graph input itself: an Identity gives it a new name.
  const outputs = tensors.map((t) => (t === graph.inputName ? b.op('Identity', [t]) : t));
  return { model: b.build([batchInput(graph.inputName, graph.inputDims.slice(1))], outputs), outputs };
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
  return { model: b.build([input], outputs), outputs };
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
  const at = b.op('Add', [b.op('Cast', [planes], { to: DataType.INT64 }), b.ints(Array.from({ length: C }, (_, c) => c * 256), [1, C, 1, 1])]);
  b.copy({ opType: 'Gather', name: 'cs/normalise', input: [b.floats(table), at], output: [b.source.inputName], attribute: [] });
  return batchInput(PIXELS_INPUT, [p.height, p.width, C], DataType.UINT8, 'B');
}
