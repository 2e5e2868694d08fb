/**
 * Compiles (model, target activation, method, LRN mode) into one ONNX graph: the forward nodes
 * the target needs, the seed selection, and the top-down pass of rules.ts down to the input
 * pixels.
 *
 * Inputs: the images [B, C, H, W] (each once) and, per item n of the batch: which image
 * (cs_item_image [N] int64), a one-hot channel (cs_item_channel [N, Ct]), a seed mask
 * (cs_item_mask [N, 1, Ht, Wt]: a one-hot position, all ones for a full map, zeros for MAX)
 * and cs_item_max [N, 1, 1, 1] (1 for MAX: the map's first maximum in raster order).
 * Outputs: the projection [N, C, H, W], the chosen channel's map [N, Ht·Wt] and its argmax [N, 1];
 * with regions, the projection is the region [N, C, h, w] the seed reaches in the input, and a
 * fourth output gives its origin [N, 2] (row, column; parts off the input hold zeros).
 * Many seeds of one image share its forward pass.
 */
import { GraphNode, OnnxGraph } from '../onnx/graph';
import { DataType, ValueInfoProto } from '../onnx/proto';
import { ancestors, batchInput, GraphBuilder } from './builder';
import { CompiledGraph } from './forward';
import { isRegion, Region, Regions, Signal } from './regions';
import { LrnMode, Method, regionRuleFor, ruleFor, RuleContext, Unpool, UnsupportedOpError } from './rules';
import { asUnitGrid, fromUnitGrid, seedShape } from './units';

export { seedShape } from './units';

export const ITEM_INPUTS = {
  image: 'cs_item_image',
  channel: 'cs_item_channel',
  mask: 'cs_item_mask',
  useMax: 'cs_item_max',
  /** With `givenSeed`: the signal sent down from the target, per item [N, Ct, Ht, Wt] (its unit grid). */
  seed: 'cs_item_seed',
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
  /**
   * Every item seeds one position (MAX or POSITION, not FULL_MAP): the top-down pass may then
   * run on the regions the seed reaches (regions.ts) instead of whole maps.
   */
  regions?: boolean;
  /** Run the forward pass once per item rather than once per image (ctx.forwardPerItem in rules.ts). */
  forwardPerItem?: boolean;
  /**
   * The signal at the target is an input (cs_item_seed), not the chosen activations: with
   * SALIENCY the graph gives the gradient of ⟨seed, activation⟩ to the input (a feature
   * visualization's step). Inputs: the images, cs_item_image and cs_item_seed; outputs: that
   * gradient [N, C, H, W] and the target's activation as its unit grid [N, Ct·Ht·Wt].
   */
  givenSeed?: boolean;
}

/** Whether a region has fewer positions than the whole [C, H, W] map (else nothing is saved by it). */
function smallerThanMap(region: Region, shape: number[]): boolean {
  return region.size[0] * region.size[1] < shape[1] * shape[2];
}

/**
 * The activation a layer's units are seeded on: its output, except for a Softmax (or
 * LogSoftmax), whose units are the logits before it.
 */
export function seedTensor(graph: OnnxGraph, node: GraphNode): string {
  if (node.op === 'Softmax' || node.op === 'LogSoftmax') return node.proto.input[0];
  return node.proto.output[0];
}

export function compileProjection(spec: ProjectionGraphSpec): CompiledGraph {
  const { graph, shapes, target, method, lrn } = spec;
  const b = new GraphBuilder(graph);
  const shape = shapes.get(target);
  if (!shape) throw new Error(`no activation "${target}"`);
  const targetShape: number[] = shape;
  const [Ct, Ht, Wt] = seedShape(targetShape);

  // Forward: the target's ancestors, unchanged; run on each item's image when the batch axis moves.
  const forwardPerItem = spec.forwardPerItem === true;
  const itemImages = forwardPerItem ? b.op('Gather', [graph.inputName, ITEM_INPUTS.image], { axis: 0 }) : graph.inputName;
  const needed = new Set(ancestors(graph, [target]));
  const forward = graph.nodes.filter((node) => needed.has(node.proto));
  for (const node of forward) {
    const reads = node.proto.input.map((i) => (i === graph.inputName ? itemImages : i));
    b.copy(forwardPerItem ? { ...node.proto, input: reads } : node.proto);
  }

  const gathered = new Map<string, string>();
  const isData = (t: string) => graph.dataPath.has(t);
  /** The data tensors between `tensor` and `source` (exclusive), or undefined if `tensor` also depends on the image otherwise. */
  const between = (tensor: string, source: string): Set<string> | undefined => {
    const stack = [tensor];
    const seen = new Set<string>();
    while (stack.length) {
      const t = stack.pop()!;
      if (t === source || seen.has(t) || !isData(t)) continue;
      if (t === graph.inputName) return undefined;
      seen.add(t);
      stack.push(...(graph.producer.get(t)?.reads ?? []));
    }
    return seen;
  };
  const ctx: RuleContext = {
    b,
    method,
    lrn,
    unpool: spec.unpool ?? (b.opset >= 16 ? 'SCATTER_ADD' : b.opset >= 11 ? 'SCATTER_GROUPS' : 'TAPS'),
    forwardPerItem,
    shape: (t) => {
      const s = shapes.get(t);
      if (!s) throw new Error(`no shape for tensor "${t}"`);
      return s;
    },
    perItem: (t) => {
      if (forwardPerItem) return t === graph.inputName ? itemImages : t;
      let g = gathered.get(t);
      if (!g) {
        g = b.op('Gather', [t, ITEM_INPUTS.image], { axis: 0 });
        gathered.set(t, g);
      }
      return g;
    },
    perItemIndices: (indices, size) => {
      // Item n's image starts at n·size (forward per item) or at its image's place in the batch.
      const place = forwardPerItem
        ? b.op('Sub', [b.op('CumSum', [b.op('Add', [b.op('Mul', [ITEM_INPUTS.image, b.ints([0], [])]), b.ints([1], [])]), b.ints([0], [])]), b.ints([1], [])])
        : ITEM_INPUTS.image;
      const offsets = b.reshape(b.op('Mul', [place, b.ints([size], [])]), [-1, 1, 1, 1]);
      return b.op('Sub', [ctx.perItem(indices), offsets]);
    },
    isData,
    dependsOnlyOn: (tensor, source) => between(tensor, source) !== undefined,
    reachesThrough: (tensor, source, op) => [...(between(tensor, source) ?? [])].some((t) => graph.producer.get(t)?.op === op),
    value: (t) => graph.constant(t),
  };

  const activation = asUnitGrid(b, ctx.perItem(target), targetShape);
  let regions: Regions | undefined;
  let seed: Signal;
  let itemOutputs: string[];
  let itemInputs: ValueInfoProto[];
  if (spec.givenSeed) {
    seed = fromUnitGrid(b, b.reshape(ITEM_INPUTS.seed, [-1, Ct, Ht, Wt]), targetShape);
    itemOutputs = [b.reshape(activation, [-1, Ct * Ht * Wt])];
    itemInputs = [batchInput(ITEM_INPUTS.seed, [Ct, Ht, Wt])];
  } else {
    ({ seed, regions, itemOutputs, itemInputs } = chosenSeed());
  }

  /** The chosen channel's activations at the chosen positions, everything else zero. */
  function chosenSeed(): { seed: Signal; regions?: Regions; itemOutputs: string[]; itemInputs: ValueInfoProto[] } {
    const channel = b.reshape(ITEM_INPUTS.channel, [-1, Ct, 1, 1]);
    const channelMap = b.reduceSum(b.op('Mul', [activation, channel]), [1]);
    const flatMap = b.reshape(channelMap, [-1, Ht * Wt]);
    const argmax = b.op('ArgMax', [flatMap], { axis: 1, keepdims: 1 });
    // The first maximum as a one-hot mask, in float ops (ORT's WebGPU provider has no OneHot).
    const positions = b.floats(
      Array.from({ length: Ht * Wt }, (_, i) => i),
      [Ht * Wt],
      'positions',
    );
    const atMax = b.reshape(b.op('Cast', [b.op('Equal', [positions, b.op('Gather', [positions, argmax])])], { to: DataType.FLOAT }), [-1, 1, Ht, Wt]);
    const mask = b.op('Add', [b.op('Mul', [atMax, ITEM_INPUTS.useMax]), ITEM_INPUTS.mask]);

    // With one position per item, signals start as that unit's 1×1 region (regions.ts), which
    // needs ScatterElements and GatherElements (opset 11).
    const withRegions = spec.regions === true && targetShape.length === 3 && ctx.unpool !== 'TAPS' && !forwardPerItem;
    let regions: Regions | undefined;
    let seed: Signal;
    if (withRegions) {
      const at = b.op('ArgMax', [b.reshape(mask, [-1, Ht * Wt])], { axis: 1, keepdims: 1 });
      const row = b.op('Div', [at, b.ints([Wt], [])]);
      const col = b.op('Sub', [at, b.op('Mul', [row, b.ints([Wt], [])])]);
      regions = new Regions(b, [b.reshape(row, [-1, 1, 1, 1]), b.reshape(col, [-1, 1, 1, 1])], ITEM_INPUTS.image);
      const value = b.reshape(b.op('GatherElements', [flatMap, at], { axis: 1 }), [-1, 1, 1, 1]);
      seed = { tensor: b.op('Mul', [channel, value]), region: { size: [1, 1], scale: [1, 1], shift: [0, 0] } };
    } else {
      seed = fromUnitGrid(b, b.op('Mul', [b.op('Mul', [activation, channel]), mask]), targetShape);
    }
    return {
      seed,
      regions,
      itemOutputs: [flatMap, argmax],
      itemInputs: [batchInput(ITEM_INPUTS.channel, [Ct]), batchInput(ITEM_INPUTS.mask, [1, Ht, Wt]), batchInput(ITEM_INPUTS.useMax, [1, 1, 1])],
    };
  }
  const asWholeMap = (s: Signal, tensor: string) => (isRegion(s) ? regions!.whole(s, ctx.shape(tensor)) : s);

  // Top-down: signals flow from the target to the input, summed where a tensor feeds several nodes.
  const signal = new Map<string, Signal>([[target, seed]]);
  for (const node of [...forward].reverse()) {
    const output = node.proto.output[0];
    const received = node.proto.output.map((o) => signal.get(o));
    let g = received[0];
    if (received.slice(1).some(Boolean)) {
      // Several outputs carry signals (Split): the rule takes them all, as whole maps.
      const outputs = received.map((s, i) => s && asWholeMap(s, node.proto.output[i]));
      sendDown(ruleFor(node)(ctx, node, outputs[0] ?? '', outputs));
      continue;
    }
    if (!g) continue;
    const regionRule = isRegion(g) && smallerThanMap(g.region, ctx.shape(output)) ? regionRuleFor(ctx, node) : undefined;
    if (!regionRule) g = asWholeMap(g, output);
    sendDown(isRegion(g) ? regionRule!(ctx, node, g, regions!) : ruleFor(node)(ctx, node, g, [g]));
  }
  function sendDown(sent: [string, Signal][]): void {
    for (const [input, s] of sent) {
      if (!isData(input)) continue;
      const previous = signal.get(input);
      signal.set(input, !previous ? s : regions ? regions.sum(previous, s, ctx.shape(input)) : b.op('Add', [previous as string, s as string]));
    }
  }
  const reached = signal.get(graph.inputName);
  if (!reached) throw new UnsupportedOpError(forward[forward.length - 1], 'passes no signal down to the input');
  // A region reaching the input is returned as it is, with its origin: pasting it into the
  // image is a few row copies for the engine, and a large gather in the graph.
  const projection = b.op('Identity', [isRegion(reached) ? reached.tensor : reached]);
  const outputs = [projection, ...itemOutputs];
  if (isRegion(reached))
    outputs.push(
      b.typed(
        b.op(
          'Concat',
          [0, 1].map((a) => b.reshape(regions!.origin(reached.region, a as 0 | 1), [-1, 1])),
          { axis: 1 },
        ),
        DataType.INT64,
      ),
    );

  const C = shapes.get(graph.inputName)!;
  const inputs = [
    batchInput(graph.inputName, C, DataType.FLOAT, 'B'),
    { name: ITEM_INPUTS.image, type: { tensorType: { elemType: DataType.INT64, shape: { dim: [{ dimParam: 'N' }] } } } },
    ...itemInputs,
  ];
  return b.build(inputs, outputs);
}
