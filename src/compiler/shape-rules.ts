/**
 * Rules of the ops that move values without changing them (reshapes, transposes, slices,
 * gathers, concatenations, paddings): the signal goes back to where each value came from,
 * summed where one value went to several places (Expand, Tile, repeated Gather indices).
 */
import { attrInt, attrInts, attrString, GraphNode } from '../onnx/graph';
import { dataInput, normalAxis, Rule, RuleContext, shapeOf, Signals, UnsupportedOpError } from './rule-context';
import { unbroadcast } from './elementwise-rules';

const reshapeBack: Rule = (ctx, node, g) => [[dataInput(node), ctx.b.op('Reshape', [g, shapeOf(ctx, dataInput(node))])]];

/** Constant integer parameters (Slice's starts, Gather's indices …): given in the file or folded at load. */
function constantInput(ctx: RuleContext, node: GraphNode, index: number, what: string): number[] | undefined {
  const tensor = node.proto.input[index];
  if (!tensor) return undefined;
  const value = ctx.value(tensor);
  if (!value) throw new UnsupportedOpError(node, `has ${what} computed from the image`);
  return value;
}

export const SHAPE_RULES: Record<string, Rule> = {
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,

  Transpose: (ctx, node, g) => {
    const rank = ctx.shape(dataInput(node)).length + 1;
    const perm = attrInts(node.proto, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    if (perm[0] !== 0 && !ctx.forwardPerItem) throw new UnsupportedOpError(node, 'moves the batch axis');
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [[dataInput(node), ctx.b.op('Transpose', [g], { perm: inverse })]];
  },

  // The slice's signal padded back with zeros to the input's extent (steps of 1 only).
  Slice: (ctx, node, g) => {
    const x = dataInput(node);
    const shape = [0, ...ctx.shape(x)];
    const rank = shape.length;
    const starts = constantInput(ctx, node, 1, 'starts')!;
    const ends = constantInput(ctx, node, 2, 'ends')!;
    const axes = constantInput(ctx, node, 3, 'axes') ?? starts.map((_, i) => i);
    const steps = constantInput(ctx, node, 4, 'steps') ?? starts.map(() => 1);
    if (steps.some((s) => s !== 1)) throw new UnsupportedOpError(node, 'slices with steps other than 1');
    const pads = new Array(2 * rank).fill(0);
    axes.forEach((a, i) => {
      const axis = normalAxis(a, rank);
      if (axis === 0) throw new UnsupportedOpError(node, 'slices the batch axis');
      const size = shape[axis];
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
      const [begin, end] = [clamp(starts[i]), clamp(ends[i])];
      pads[axis] = begin;
      pads[rank + axis] = size - Math.max(begin, end);
    });
    return [[x, ctx.b.pad(g, pads)]];
  },

  // The outputs' signals side by side again (zeros for an output with no signal).
  Split: (ctx, node, g, outputs = []) => {
    const { b } = ctx;
    const x = dataInput(node);
    const rank = ctx.shape(x).length + 1;
    const axis = normalAxis(attrInt(node.proto, 'axis', 0), rank);
    if (axis === 0) throw new UnsupportedOpError(node, 'splits the batch axis');
    const parts = node.proto.output.map((out, i) => outputs[i] ?? b.zeros(outputs.find(Boolean)!, ctx.shape(out)));
    return [[x, b.op('Concat', parts, { axis })]];
  },

  // Gather with constant indices: a one-hot matrix sends each gathered value back to its index.
  Gather: (ctx, node, g) => {
    const { b } = ctx;
    const [x, indices] = node.proto.input;
    if (ctx.isData(indices) || !ctx.isData(x)) throw new UnsupportedOpError(node, 'gathers at indices computed from the image');
    const at = constantInput(ctx, node, 1, 'indices')!;
    const inShape = ctx.shape(x);
    const rank = inShape.length + 1;
    const axis = normalAxis(attrInt(node.proto, 'axis', 0), rank);
    if (axis === 0) throw new UnsupportedOpError(node, 'gathers along the batch axis');
    const size = inShape[axis - 1];
    const count = at.length;
    const onehot = new Float32Array(count * size);
    at.forEach((index, k) => (onehot[k * size + (index < 0 ? index + size : index)] += 1));
    // The signal with the gathered axes as one of `count`, moved last, times the one-hot [count, size].
    const flat = b.reshape(g, [-1, ...inShape.slice(0, axis - 1), count, ...inShape.slice(axis)]);
    const perm = [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis), axis];
    const spread = b.op('MatMul', [b.op('Transpose', [flat], { perm }), b.floats(onehot, [count, size])]);
    return [[x, b.op('Transpose', [spread], { perm: perm.map((_, i) => perm.indexOf(i)) })]];
  },

  Expand: (ctx, node, g) => [[dataInput(node), unbroadcast(ctx, node, g, dataInput(node))]],

  // Tile: each copy's signal summed back onto the input.
  Tile: (ctx, node, g) => {
    const x = dataInput(node);
    const inShape = ctx.shape(x);
    const repeats = constantInput(ctx, node, 1, 'repeats')!;
    if (repeats[0] !== 1) throw new UnsupportedOpError(node, 'tiles the batch axis');
    const split = inShape.flatMap((d, i) => [repeats[i + 1], d]);
    const summed = ctx.b.reduceSum(
      ctx.b.reshape(g, [-1, ...split]),
      inShape.map((_, i) => 1 + 2 * i),
      0,
    );
    return [[x, summed]];
  },

  Concat: (ctx, node, g) => {
    const rank = ctx.shape(node.proto.output[0]).length + 1;
    const axis = normalAxis(attrInt(node.proto, 'axis', 1), rank);
    if (axis === 0) throw new UnsupportedOpError(node, 'concatenates along the batch axis');
    const signals: Signals = [];
    let start = 0;
    for (const input of node.proto.input) {
      const size = ctx.shape(input)[axis - 1];
      if (ctx.isData(input)) signals.push([input, ctx.b.slice(g, [start], [start + size], [axis])]);
      start += size;
    }
    return signals;
  },

  Pad: (ctx, node, g) => {
    const pads = node.proto.input[1] ? ctx.value(node.proto.input[1]) : attrInts(node.proto, 'pads');
    if (attrString(node.proto, 'mode', 'constant') !== 'constant' || !pads || pads.some((p) => p < 0) || node.proto.input[3]) {
      throw new UnsupportedOpError(node, 'is not a constant zero padding with fixed pads');
    }
    const x = dataInput(node);
    const shape = ctx.shape(x);
    const rank = shape.length + 1;
    if (pads[0] !== 0 || pads[rank] !== 0) throw new UnsupportedOpError(node, 'pads the batch axis');
    if (pads.every((p) => p === 0)) return [[x, g]];
    const axes = shape.map((_, i) => i + 1);
    const starts = axes.map((a) => pads[a]);
    return [
      [
        x,
        ctx.b.slice(
          g,
          starts,
          axes.map((a, i) => starts[i] + shape[i]),
          axes,
        ),
      ],
    ];
  },
};
