/**
 * Occlusion graphs (ZF §4.2): the model with the occluder applied inside the graph, so that a
 * batch of occluder positions costs one copy of the image, not one per position.
 *
 * Inputs: the images [B, C, H, W] (each once) and, per item n: which image (cs_occ_image [N]
 * int64), the occluder's rows (cs_occ_rows [N, 1, H, 1], 1 inside) and columns (cs_occ_cols
 * [N, 1, 1, W]) and the fill (cs_occ_fill [N, C, 1, 1], preprocessed values). The occluded
 * tensor x'[n] = where(rows·cols, fill, x[image[n]]) takes the place of the model's input.
 * Outputs, per item: the layer's per-channel sums and maxima over the map [N, Cl], and the class
 * probabilities [N, K] (softmax of the first graph output, or that output itself when the graph
 * already ends in a Softmax; exp of a final LogSoftmax).
 */
import { OnnxGraph } from '../onnx/graph';
import { DataType } from '../onnx/proto';
import { ancestors, batchInput, GraphBuilder } from './builder';
import { CompiledGraph } from './forward';
import { seedShape } from './projection';

export const OCCLUSION_INPUTS = {
  images: 'cs_occ_images',
  image: 'cs_occ_image',
  rows: 'cs_occ_rows',
  cols: 'cs_occ_cols',
  fill: 'cs_occ_fill',
} as const;

/** How the model's first output becomes probabilities. */
export function probabilityRule(graph: OnnxGraph): 'SOFTMAX' | 'IS_SOFTMAX' | 'EXP' {
  const op = graph.producer.get(graph.outputNames[0])?.op;
  return op === 'Softmax' ? 'IS_SOFTMAX' : op === 'LogSoftmax' ? 'EXP' : 'SOFTMAX';
}

/** Adds [N, K] class probabilities of the model's first output to a graph being built. */
export function addProbabilities(b: GraphBuilder, graph: OnnxGraph): string {
  const flat = b.op('Flatten', [graph.outputNames[0]], { axis: 1 });
  const rule = probabilityRule(graph);
  // On a 2-D tensor every opset's Softmax with axis 1 is the softmax over classes.
  return rule === 'IS_SOFTMAX' ? flat : rule === 'EXP' ? b.op('Exp', [flat]) : b.op('Softmax', [flat], { axis: 1 });
}

/** `inputShape` [C, H, W] is the model's (the graph's own may leave H and W symbolic). */
export function compileOcclusion(graph: OnnxGraph, inputShape: number[], layerTensor: string, layerShape: number[]): CompiledGraph {
  const b = new GraphBuilder(graph);
  const [C, H, W] = inputShape;
  const gathered = b.op('Gather', [OCCLUSION_INPUTS.images, OCCLUSION_INPUTS.image], { axis: 0 });
  const inside = b.op('Cast', [b.op('Mul', [OCCLUSION_INPUTS.rows, OCCLUSION_INPUTS.cols])], { to: DataType.BOOL });
  // The occluded image is named as the model's input, so the model's own nodes read it unchanged.
  b.copy({ opType: 'Where', name: b.fresh('occlude'), input: [inside, OCCLUSION_INPUTS.fill, gathered], output: [graph.inputName], attribute: [] });
  const output = graph.outputNames[0];
  for (const node of ancestors(graph, [layerTensor, output])) b.copy(node);

  const [Cl, Hl, Wl] = seedShape(layerShape);
  const maps = b.reshape(layerTensor, [-1, Cl, Hl * Wl]);
  const sums = b.reduceSum(maps, [2], 0);
  const maxes = b.reduceMax(maps, [2], 0);
  const probabilities = addProbabilities(b, graph);
  const outputs = [sums, maxes, probabilities];
  const inputs = [
    batchInput(OCCLUSION_INPUTS.images, inputShape, DataType.FLOAT, 'B'),
    { name: OCCLUSION_INPUTS.image, type: { tensorType: { elemType: DataType.INT64, shape: { dim: [{ dimParam: 'N' }] } } } },
    batchInput(OCCLUSION_INPUTS.rows, [1, H, 1]),
    batchInput(OCCLUSION_INPUTS.cols, [1, 1, W]),
    batchInput(OCCLUSION_INPUTS.fill, [C, 1, 1]),
  ];
  return b.build(inputs, outputs);
}
