/** Rules of the normalisations and reductions: their exact gradients (LRN: identity or exact, by choice). */
import { attrFloat, attrInt, attrInts, GraphNode } from '../onnx/graph';
import { dataInput, identity, normalAxis, Rule, RuleContext, UnsupportedOpError } from './rule-context';

export const NORM_RULES: Record<string, Rule> = {
  BatchNormalization: (ctx, node, g) => {
    const { b } = ctx;
    const [, scale, , , variance] = node.proto.input;
    const C = ctx.shape(dataInput(node))[0];
    const eps = attrFloat(node.proto, 'epsilon', 1e-5);
    const factor = b.op('Div', [scale, b.op('Sqrt', [b.op('Add', [variance, b.scalar(eps)])])]);
    return [[dataInput(node), b.op('Mul', [g, b.reshape(factor, [1, C, 1, 1])])]];
  },

  LRN: (ctx, node, g) => {
    if (ctx.lrn === 'IDENTITY') return identity(ctx, node, g);
    return [[dataInput(node), lrnGradient(ctx, node, g)]];
  },

  // y = γ·x̂ + β, x̂ = (x − μ)/σ over the axes from `axis` on:
  // ∂x = (1/σ)·(gγ − mean(gγ) − x̂·mean(gγ·x̂))
  LayerNormalization: (ctx, node, g) => {
    const { b } = ctx;
    const [x, scale] = node.proto.input;
    const rank = ctx.shape(x).length + 1;
    const first = normalAxis(attrInt(node.proto, 'axis', -1), rank);
    const axes = Array.from({ length: rank - first }, (_, i) => first + i);
    const eps = attrFloat(node.proto, 'epsilon', 1e-5);
    const xi = ctx.perItem(x);
    const centred = b.op('Sub', [xi, b.reduceMean(xi, axes)]);
    const sigma = b.op('Sqrt', [b.op('Add', [b.reduceMean(b.op('Mul', [centred, centred]), axes), b.scalar(eps)])]);
    const normalised = b.op('Div', [centred, sigma]);
    const gs = ctx.isData(scale) ? undefined : b.op('Mul', [g, scale]);
    if (!gs) throw new UnsupportedOpError(node, 'has a computed scale');
    const inner = b.op('Sub', [b.op('Sub', [gs, b.reduceMean(gs, axes)]), b.op('Mul', [normalised, b.reduceMean(b.op('Mul', [gs, normalised]), axes)])]);
    return [[x, b.op('Div', [inner, sigma])]];
  },

  ReduceMean: (ctx, node, g) => reduceBack(ctx, node, g, true),
  ReduceSum: (ctx, node, g) => reduceBack(ctx, node, g, false),
};

/** The axes a Reduce* node reduces (attribute before opset 18 (ReduceSum: 13), input after), batch axis first. */
function reducedAxes(ctx: RuleContext, node: GraphNode): number[] {
  const rank = ctx.shape(dataInput(node)).length + 1;
  const input = node.proto.input[1];
  const axes = input ? ctx.value(input) : attrInts(node.proto, 'axes');
  if (input && !axes) throw new UnsupportedOpError(node, 'reduces over computed axes');
  const all = Array.from({ length: rank }, (_, i) => i);
  const chosen = !axes || axes.length === 0 ? (attrInt(node.proto, 'noop_with_empty_axes', 0) ? [] : all) : axes.map((a) => normalAxis(a, rank));
  if (chosen.includes(0)) throw new UnsupportedOpError(node, 'reduces over the batch axis');
  return chosen;
}

/** Spreads the signal back over the reduced axes (divided by their size for a mean). */
function reduceBack(ctx: RuleContext, node: GraphNode, g: string, mean: boolean) {
  const { b } = ctx;
  const x = dataInput(node);
  const inShape = ctx.shape(x);
  const axes = reducedAxes(ctx, node);
  const kept = attrInt(node.proto, 'keepdims', 1) === 1 ? g : b.reshape(g, [-1, ...inShape.map((d, i) => (axes.includes(i + 1) ? 1 : d))]);
  let spread = b.op('Expand', [kept, b.ints([1, ...inShape])]);
  if (mean) spread = b.op('Mul', [spread, b.scalar(1 / axes.reduce((n, a) => n * inShape[a - 1], 1))]);
  return [[x, spread]] as [string, string][];
}

/**
 * The exact gradient of ONNX LRN: y_c = x_c·d_c^−β with d_c = k + α/n·Σ_{i∈win(c)} x_i².
 * ∂x_i = g_i·d_i^−β − (2αβ/n)·x_i·Σ_{c: i∈win(c)} g_c·x_c·d_c^(−β−1). Window sums are a 1×1 conv
 * with a band matrix over channels.
 */
function lrnGradient(ctx: RuleContext, node: GraphNode, g: string): string {
  const { b } = ctx;
  const p = node.proto;
  const size = attrInt(p, 'size', 1);
  const alpha = attrFloat(p, 'alpha', 1e-4);
  const beta = attrFloat(p, 'beta', 0.75);
  const bias = attrFloat(p, 'bias', 1);
  const x = ctx.perItem(p.input[0]);
  const C = ctx.shape(p.input[0])[0];
  const before = Math.floor((size - 1) / 2);
  const after = Math.ceil((size - 1) / 2);
  const band = new Float32Array(C * C);
  const bandT = new Float32Array(C * C);
  for (let c = 0; c < C; c++) {
    for (let i = Math.max(0, c - before); i <= Math.min(C - 1, c + after); i++) {
      band[c * C + i] = 1;
      bandT[i * C + c] = 1;
    }
  }
  const sumSquares = b.op('Conv', [b.op('Mul', [x, x]), b.floats(band, [C, C, 1, 1], 'lrn_band')]);
  const d = b.op('Add', [b.op('Mul', [sumSquares, b.scalar(alpha / size)]), b.scalar(bias)]);
  const direct = b.op('Mul', [g, b.op('Pow', [d, b.scalar(-beta)])]);
  const t = b.op('Mul', [b.op('Mul', [g, x]), b.op('Pow', [d, b.scalar(-beta - 1)])]);
  const spread = b.op('Conv', [t, b.floats(bandT, [C, C, 1, 1], 'lrn_band_t')]);
  const cross = b.op('Mul', [b.op('Mul', [x, spread]), b.scalar((2 * alpha * beta) / size)]);
  return b.op('Sub', [direct, cross]);
}
