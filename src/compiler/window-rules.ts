/** Rules of the sliding-window ops: Conv (transposed conv) and the pools (unpooling, spreading). */
import { attrInt, GraphNode } from '../onnx/graph';
import { windowOf } from '../onnx/ops';
import { Regions, RegionSignal } from './regions';
import { dataInput, Rule, RuleContext } from './rule-context';
import { cropTo, spreadOverWindows, transposedConv, transposedKernel } from './transpose-window';
import { poolWindow, unpoolAtIndices, unpoolByTaps } from './unpool';

export const WINDOW_RULES: Record<string, Rule> = {
  Conv: (ctx, node, g) => {
    const x = dataInput(node);
    const inShape = ctx.shape(x);
    const outShape = ctx.shape(node.proto.output[0]);
    const win = windowOf(ctx.b.source, node, [inShape[1], inShape[2]]);
    const group = attrInt(node.proto, 'group', 1);
    if (win.strides.every((st) => st === 1)) {
      // Cut to the input's size by the conv's own padding, where that is a cut.
      const span = [0, 1].map((a) => (win.kernel[a] - 1) * win.dilations[a]);
      const begin = [0, 1].map((a) => span[a] - win.padsBegin[a]);
      const end = [0, 1].map((a) => inShape[a + 1] - outShape[a + 1] + span[a] - begin[a]);
      const flipped = transposedKernel(ctx, node.proto.input[1], group);
      if (flipped && [...begin, ...end].every((p) => p >= 0)) {
        return [[x, ctx.b.op('Conv', [g, flipped], { group, dilations: win.dilations, pads: [...begin, ...end] })]];
      }
    }
    return [[x, cropTo(ctx, transposedConv(ctx, node, g, win, [outShape[1], outShape[2]], [inShape[1], inShape[2]]), inShape)]];
  },

  MaxPool: (ctx, node, g) => {
    const x = dataInput(node);
    const inShape = ctx.shape(x);
    const outShape = ctx.shape(node.proto.output[0]);
    const win = poolWindow(ctx, node);
    const unpooled = ctx.unpool !== 'TAPS' ? unpoolAtIndices(ctx, node, g, win, inShape) : unpoolByTaps(ctx, node, g, win, inShape, outShape);
    return [[x, unpooled]];
  },

  AveragePool: (ctx, node, g) => {
    const { b } = ctx;
    const x = dataInput(node);
    const inShape = ctx.shape(x);
    const [C, H, W] = inShape;
    const outShape = ctx.shape(node.proto.output[0]);
    const [, Ho, Wo] = outShape;
    const win = windowOf(ctx.b.source, node, [H, W]);
    const includePad = attrInt(node.proto, 'count_include_pad', 0) === 1;
    // Each output divided by the number of inputs it averaged (ORT's rule at borders).
    const counts = new Float32Array(Ho * Wo);
    const extent = (o: number, a: number, size: number) => {
      const start = o * win.strides[a] - win.padsBegin[a];
      const end = Math.min(start + (win.kernel[a] - 1) * win.dilations[a] + 1, size + win.padsEnd[a]);
      return includePad ? end - start : Math.min(end, size) - Math.max(start, 0);
    };
    for (let i = 0; i < Ho; i++) for (let j = 0; j < Wo; j++) counts[i * Wo + j] = extent(i, 0, H) * extent(j, 1, W);
    const scaled = b.op('Div', [g, b.floats(counts, [1, 1, Ho, Wo])]);
    const ones = b.floats(new Float32Array(C * win.kernel[0] * win.kernel[1]).fill(1), [C, 1, ...win.kernel]);
    return [[x, spreadOverWindows(ctx, scaled, ones, win, inShape, outShape)]];
  },

  GlobalAveragePool: (ctx, node, g) => {
    const [, H, W] = ctx.shape(dataInput(node));
    return [[dataInput(node), ctx.b.op('Mul', [g, ctx.b.floats(new Float32Array(H * W).fill(1 / (H * W)), [1, 1, H, W])])]];
  },
};

/** A Conv's transpose on a region signal, over the region it spreads to (masked to the input map). */
export function convRegion(ctx: RuleContext, node: GraphNode, g: RegionSignal, regions: Regions): [string, RegionSignal][] {
  const x = dataInput(node);
  const [, H, W] = ctx.shape(x);
  const win = windowOf(ctx.b.source, node, [H, W]);
  const region = Regions.spread(g.region, win);
  const canvas = transposedConv(ctx, node, g.tensor, win, g.region.size);
  const [h, w] = region.size;
  const spread = canvas.size[0] === h && canvas.size[1] === w ? canvas.tensor : ctx.b.slice(canvas.tensor, [0, 0], [h, w], [2, 3]);
  return [[x, { tensor: ctx.b.op('Mul', [spread, regions.onMapAsFloat(region, H, W)]), region }]];
}
