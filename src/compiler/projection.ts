/**
 * Compiles (model, target activation, method, LRN mode) into one ONNX graph: the forward nodes
 * the target needs, the seed selection, and the top-down pass of rules.ts down to the input
 * pixels.
 *
 * Inputs: the images [B, C, H, W] (each once) and, per item n of the batch: which image
 * (cs_item_image [N] int64), a one-hot channel (cs_item_channel [N, Ct]), a seed mask
 * (cs_item_mask [N, 1, Ht, Wt]: a one-hot position, all ones for a full map, zeros for MAX)
 * and cs_item_max [N, 1, 1, 1] (1 for MAX: the map's first maximum in raster order).
 * Outputs: the projection [N, C, H, W], the chosen channel's map [N, Ht·Wt] and its argmax [N, 1].
 * Many seeds of one image share its forward pass.
 */
import { GraphNode, OnnxGraph } from '../onnx/graph';
import { DataType } from '../onnx/proto';
import { ancestors, batchInput, GraphBuilder } from './builder';
import { CompiledGraph } from './forward';
import { LrnMode, Method, ruleFor, RuleContext, Unpool, UnsupportedOpError } from './rules';

export const ITEM_INPUTS = {
  image: 'cs_item_image',
  channel: 'cs_item_channel',
  mask: 'cs_item_mask',
  useMax: 'cs_item_max',
} as const;

export interface ProjectionGraphSpec {
  graph: OnnxGraph;
  /** Per-image shapes of every activation. */
  shapes: Map<string, number[]>;
  /** The target activation tensor. */
  target: string;
  method: Method;
  lrn: LrnMode;
  /** How max-pools unpool (see rules.ts); default: the fastest the model's opset allows. */
  unpool?: Unpool;
}

/**
 * The activation a layer's units are seeded on: its output, except for a Softmax (or
 * LogSoftmax), whose units are the logits before it.
 */
export function seedTensor(graph: OnnxGraph, node: GraphNode): string {
  if (node.op === 'Softmax' || node.op === 'LogSoftmax') return node.proto.input[0];
  return node.proto.output[0];
}

/** Target shapes as [channels, height, width]; dense [F] is [F, 1, 1]. */
export function seedShape(shape: number[]): [number, number, number] {
  if (shape.length === 3) return shape as [number, number, number];
  if (shape.length === 1) return [shape[0], 1, 1];
  throw new Error(`activations of shape [${shape}] can't be seeded: expected [C, H, W] or [F]`);
}

export function compileProjection(spec: ProjectionGraphSpec): CompiledGraph {
  const { graph, shapes, target, method, lrn } = spec;
  const b = new GraphBuilder(graph);
  const targetShape = shapes.get(target);
  if (!targetShape) throw new Error(`no activation "${target}"`);
  const [Ct, Ht, Wt] = seedShape(targetShape);

  // Forward: the target's ancestors, unchanged.
  const needed = new Set(ancestors(graph, [target]));
  const forward = graph.nodes.filter((node) => needed.has(node.proto));
  for (const node of forward) b.copy(node.proto);

  const gathered = new Map<string, string>();
  const isData = (t: string) => graph.dataPath.has(t);
  const ctx: RuleContext = {
    b,
    method,
    lrn,
    unpool: spec.unpool ?? (b.opset >= 16 ? 'SCATTER_ADD' : b.opset >= 11 ? 'SCATTER_GROUPS' : 'TAPS'),
    shape: (t) => {
      const s = shapes.get(t);
      if (!s) throw new Error(`no shape for activation "${t}"`);
      return s;
    },
    perItem: (t) => {
      let g = gathered.get(t);
      if (!g) {
        g = b.op('Gather', [t, ITEM_INPUTS.image], { axis: 0 });
        gathered.set(t, g);
      }
      return g;
    },
    perItemIndices: (indices, size) => {
      const offsets = b.reshape(b.op('Mul', [ITEM_INPUTS.image, b.ints([size], [])]), [-1, 1, 1, 1]);
      return b.op('Sub', [ctx.perItem(indices), offsets]);
    },
    isData,
    dependsOnlyOn: (tensor, source) => {
      const stack = [tensor];
      const seen = new Set<string>();
      while (stack.length) {
        const t = stack.pop()!;
        if (t === source || seen.has(t) || !isData(t)) continue;
        if (t === graph.inputName) return false;
        seen.add(t);
        stack.push(...(graph.producer.get(t)?.reads ?? []));
      }
      return true;
    },
  };

  // Seed: the chosen channel's activations at the chosen positions, everything else zero.
  const activation = b.reshape(ctx.perItem(target), [-1, Ct, Ht, Wt]);
  const channel = b.reshape(ITEM_INPUTS.channel, [-1, Ct, 1, 1]);
  const channelMap = b.reduceSum(b.op('Mul', [activation, channel]), [1]);
  const flatMap = b.reshape(channelMap, [-1, Ht * Wt]);
  const argmax = b.op('ArgMax', [flatMap], { axis: 1, keepdims: 1 });
  const atMax = b.reshape(b.op('OneHot', [argmax, b.ints([Ht * Wt], []), b.floats([0, 1])], { axis: -1 }), [-1, 1, Ht, Wt]);
  const mask = b.op('Add', [b.op('Mul', [atMax, ITEM_INPUTS.useMax]), ITEM_INPUTS.mask]);
  const seed = b.op('Mul', [b.op('Mul', [activation, channel]), mask]);

  // Top-down: signals flow from the target to the input, summed where a tensor feeds several nodes.
  const signal = new Map<string, string>([[target, b.reshape(seed, [-1, ...targetShape])]]);
  for (const node of [...forward].reverse()) {
    const g = signal.get(node.proto.output[0]);
    if (!g) continue;
    for (const [input, s] of ruleFor(node)(ctx, node, g)) {
      if (!isData(input)) continue;
      const previous = signal.get(input);
      signal.set(input, previous ? b.op('Add', [previous, s]) : s);
    }
  }
  const projection = signal.get(graph.inputName);
  if (!projection) throw new UnsupportedOpError(forward[forward.length - 1], 'passes no signal down to the input');

  const C = shapes.get(graph.inputName)!;
  const inputs = [
    batchInput(graph.inputName, C, DataType.FLOAT, 'B'),
    { name: ITEM_INPUTS.image, type: { tensorType: { elemType: DataType.INT64, shape: { dim: [{ dimParam: 'N' }] } } } },
    batchInput(ITEM_INPUTS.channel, [Ct]),
    batchInput(ITEM_INPUTS.mask, [1, Ht, Wt]),
    batchInput(ITEM_INPUTS.useMax, [1, 1, 1]),
  ];
  const output = b.op('Identity', [projection]);
  return { model: b.build(inputs, [output, flatMap, argmax]), outputs: [output, flatMap, argmax] };
}
