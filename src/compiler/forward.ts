/** Forward graphs: the model cut at the requested activations, each returned as an output. */
import { OnnxGraph } from '../onnx/graph';
import { ancestors, batchInput, GraphBuilder } from './builder';

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
