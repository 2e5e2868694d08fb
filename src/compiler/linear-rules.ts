/** Rules of the matrix products: dense layers (times constant weights) and products of two activations (attention). */
import { attrFloat, attrInt } from '../onnx/graph';
import { Rule, RuleContext, Signals, UnsupportedOpError } from './rule-context';

/** A tensor with its last two axes swapped (rank given, batch included). */
function swapLast(ctx: RuleContext, t: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return ctx.b.op('Transpose', [t], { perm });
}

export const LINEAR_RULES: Record<string, Rule> = {
  Gemm: (ctx, node, g) => {
    const [a, weights] = node.proto.input;
    if (ctx.isData(weights)) throw new UnsupportedOpError(node, 'multiplies two activations');
    if (attrInt(node.proto, 'transA', 0) !== 0) throw new UnsupportedOpError(node, 'has transA = 1');
    const alpha = attrFloat(node.proto, 'alpha', 1);
    // y = α·a·B' → ∂a = α·g·B'ᵀ, where B' = B or Bᵀ (transB).
    let signal = ctx.b.op('Gemm', [g, weights], { transB: attrInt(node.proto, 'transB', 0) === 1 ? 0 : 1 });
    if (alpha !== 1) signal = ctx.b.op('Mul', [signal, ctx.b.scalar(alpha)]);
    return [[a, signal]];
  },

  // y = a·c (batched over equal leading axes): ∂a = g·cᵀ, ∂c = aᵀ·g.
  MatMul: (ctx, node, g) => {
    const { b } = ctx;
    const [a, c] = node.proto.input;
    const signals: Signals = [];
    if (ctx.isData(a)) {
      const weights = ctx.isData(c) ? swapLast(ctx, ctx.perItem(c), ctx.shape(c).length + 1) : constantTransposed(ctx, c);
      signals.push([a, b.op('MatMul', [g, weights])]);
    }
    if (ctx.isData(c)) {
      if (!ctx.isData(a)) throw new UnsupportedOpError(node, 'multiplies constants by an activation on the right');
      const rank = ctx.shape(a).length + 1;
      signals.push([c, b.op('MatMul', [swapLast(ctx, ctx.perItem(a), rank), g])]);
    }
    return signals;
  },
};

/** Constant weights W [K, M] as Wᵀ (weights of higher rank are not dense layers). */
function constantTransposed(ctx: RuleContext, weights: string): string {
  return ctx.b.op('Transpose', [weights], { perm: [1, 0] });
}
