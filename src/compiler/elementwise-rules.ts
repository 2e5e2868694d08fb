/**
 * Rules of the element-wise ops. The ReLU family (Relu, and Clip as ReLU6) is where the methods
 * differ (the convention of Captum's Deconvolution and GuidedBackprop); every other op sends
 * its true gradient, computed from the forward values of the item's own image.
 */
import { attrFloat, attrInt, attrString, GraphNode } from '../onnx/graph';
import { dataInput, identity, normalAxis, Rule, RuleContext, Signals, UnsupportedOpError } from './rule-context';

/** relu(g), relu(g)·[x in range] or g·[x in range], per method. */
function reluLike(ctx: RuleContext, node: GraphNode, g: string, inRange: (x: string) => string): Signals {
  const { b } = ctx;
  const x = dataInput(node);
  if (ctx.method === 'DECONVNET') return [[x, b.op('Relu', [g])]];
  const pass = inRange(ctx.perItem(x));
  const signal = ctx.method === 'GUIDED_BACKPROP' ? b.op('Relu', [g]) : g;
  return [[x, b.op('Where', [pass, signal, b.scalar(0)])]];
}

function clipBound(ctx: RuleContext, node: GraphNode, input: number, name: string, fallback: number): number {
  const tensor = node.proto.input[input];
  if (tensor) {
    const value = ctx.value(tensor);
    if (!value) throw new UnsupportedOpError(node, `has a computed ${name} bound`);
    return value[0];
  }
  return attrFloat(node.proto, name, fallback);
}

/** A node's forward values (of the batch's images): x is its input, y its output. */
interface Values {
  x: string;
  y: string;
}

/**
 * g · f'(x) for an op of one input. f' is written with the forward values and computed once
 * per image of the batch, then gathered per item: one gather, however many values f' reads.
 */
function chain(derivative: (ctx: RuleContext, v: Values, node: GraphNode) => string): Rule {
  return (ctx, node, g) => {
    const x = dataInput(node);
    const slope = derivative(ctx, { x, y: node.proto.output[0] }, node);
    return [[x, ctx.b.op('Mul', [g, ctx.perItem(slope, x)])]];
  };
}

/** 1 where `condition`, else `otherwise` (a scalar): as floats. */
function select(ctx: RuleContext, condition: string, then: string, otherwise: number): string {
  return ctx.b.op('Where', [condition, then, ctx.b.scalar(otherwise)]);
}

/**
 * A signal `g` for an output of per-item shape `outShape`, summed over the axes an input of
 * `inShape` was broadcast along (numpy rules, right-aligned, batch axis first in both).
 */
export function unbroadcast(ctx: RuleContext, node: GraphNode, g: string, input: string): string {
  const inShape = ctx.shape(input);
  const outShape = ctx.shape(node.proto.output[0]);
  if (inShape.join() === outShape.join()) return g;
  if (inShape.length !== outShape.length)
    throw new UnsupportedOpError(node, `broadcasts activation ${input} of rank ${inShape.length + 1} to rank ${outShape.length + 1}`);
  const axes = inShape.flatMap((d, i) => (d === 1 && outShape[i] !== 1 ? [i + 1] : []));
  return ctx.b.reduceSum(g, axes, 1);
}

/** Gradients of a binary op to each of its inputs that is an activation. */
function binary(gradients: (ctx: RuleContext, g: string, a: string, c: string, node: GraphNode) => [string | undefined, string | undefined]): Rule {
  return (ctx, node, g) => {
    const [a, c] = node.proto.input;
    const [ga, gc] = gradients(ctx, g, a, c, node);
    const signals: Signals = [];
    if (ctx.isData(a)) signals.push([a, unbroadcast(ctx, node, ga!, a)]);
    if (ctx.isData(c)) signals.push([c, unbroadcast(ctx, node, gc!, c)]);
    return signals;
  };
}

/** A constant operand as it is, an activation as the item's own values. */
const operand = (ctx: RuleContext, t: string) => (ctx.isData(t) ? ctx.perItem(t) : t);

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export const ELEMENTWISE_RULES: Record<string, Rule> = {
  Identity: identity,
  Dropout: identity,
  Cast: (ctx, node, g) => {
    const to = attrInt(node.proto, 'to', 1);
    if (![1, 10, 11, 16].includes(to)) throw new UnsupportedOpError(node, 'casts an activation to a type without gradient');
    return identity(ctx, node, g, []);
  },

  Relu: (ctx, node, g) => reluLike(ctx, node, g, (x) => ctx.b.op('Greater', [x, ctx.b.scalar(0)])),
  Clip: (ctx, node, g) => {
    const graphMin = clipBound(ctx, node, 1, 'min', -Infinity);
    const graphMax = clipBound(ctx, node, 2, 'max', Infinity);
    return reluLike(ctx, node, g, (x) => {
      const { b } = ctx;
      let pass = Number.isFinite(graphMin) ? b.op('Greater', [x, b.scalar(graphMin)]) : null;
      if (Number.isFinite(graphMax)) {
        const below = b.op('Less', [x, b.scalar(graphMax)]);
        pass = pass ? b.op('And', [pass, below]) : below;
      }
      return pass ?? b.op('Equal', [x, x]);
    });
  },

  // σ' = σ(1 − σ); tanh' = 1 − tanh²
  Sigmoid: chain(({ b }, v) => b.op('Mul', [v.y, b.op('Sub', [b.scalar(1), v.y])])),
  Tanh: chain(({ b }, v) => b.op('Sub', [b.scalar(1), b.op('Mul', [v.y, v.y])])),
  // α inside the linear part (0 < αx + β < 1), as torch's hardsigmoid_backward
  HardSigmoid: chain((ctx, v, node) => {
    const { b } = ctx;
    const alpha = attrFloat(node.proto, 'alpha', 0.2);
    const z = b.op('Add', [b.op('Mul', [v.x, b.scalar(alpha)]), b.scalar(attrFloat(node.proto, 'beta', 0.5))]);
    return select(ctx, b.op('And', [b.op('Greater', [z, b.scalar(0)]), b.op('Less', [z, b.scalar(1)])]), b.scalar(alpha), 0);
  }),
  // x·relu6(x + 3)/6: 0 below −3, x/3 + 1/2 up to 3, 1 above (torch's hardswish_backward)
  HardSwish: chain((ctx, v) => {
    const { b } = ctx;
    const x = v.x;
    const ramp = b.op('Add', [b.op('Div', [x, b.scalar(3)]), b.scalar(0.5)]);
    const upper = b.op('Where', [b.op('Greater', [x, b.scalar(3)]), b.scalar(1), ramp]);
    return b.op('Where', [b.op('Less', [x, b.scalar(-3)]), b.scalar(0), upper]);
  }),
  LeakyRelu: chain((ctx, v, node) => select(ctx, ctx.b.op('Greater', [v.x, ctx.b.scalar(0)]), ctx.b.scalar(1), attrFloat(node.proto, 'alpha', 0.01))),
  PRelu: (ctx, node, g) => {
    const slope = node.proto.input[1];
    if (ctx.isData(slope)) throw new UnsupportedOpError(node, 'has a computed slope');
    const { b } = ctx;
    return [[dataInput(node), b.op('Where', [b.op('Greater', [ctx.perItem(dataInput(node)), b.scalar(0)]), g, b.op('Mul', [g, slope])])]];
  },
  // x > 0: 1; else α·eˣ = y + α
  Elu: chain((ctx, v, node) => {
    const { b } = ctx;
    const alpha = attrFloat(node.proto, 'alpha', 1);
    return b.op('Where', [b.op('Greater', [v.x, b.scalar(0)]), b.scalar(1), b.op('Add', [v.y, b.scalar(alpha)])]);
  }),
  // erf'(x) = 2/√π · e^(−x²)
  Erf: chain(({ b }, v) => b.op('Mul', [b.op('Exp', [b.op('Neg', [b.op('Mul', [v.x, v.x])])]), b.scalar(2 / Math.sqrt(Math.PI))])),
  // GELU (opset 20 node): Φ(x) + x·φ(x), or its tanh approximation's derivative
  Gelu: chain((ctx, v, node) => {
    const { b } = ctx;
    const x = v.x;
    if (attrString(node.proto, 'approximate', 'none') === 'tanh') {
      const inner = b.op('Mul', [b.op('Add', [x, b.op('Mul', [b.op('Mul', [x, b.op('Mul', [x, x])]), b.scalar(0.044715)])]), b.scalar(SQRT_2_OVER_PI)]);
      const t = b.op('Tanh', [inner]);
      const dInner = b.op('Mul', [b.op('Add', [b.scalar(1), b.op('Mul', [b.op('Mul', [x, x]), b.scalar(3 * 0.044715)])]), b.scalar(SQRT_2_OVER_PI)]);
      const sech2 = b.op('Sub', [b.scalar(1), b.op('Mul', [t, t])]);
      return b.op('Add', [
        b.op('Mul', [b.op('Add', [b.scalar(1), t]), b.scalar(0.5)]),
        b.op('Mul', [b.op('Mul', [b.op('Mul', [x, b.scalar(0.5)]), sech2]), dInner]),
      ]);
    }
    const cdf = b.op('Mul', [b.op('Add', [b.scalar(1), b.op('Erf', [b.op('Mul', [x, b.scalar(Math.SQRT1_2)])])]), b.scalar(0.5)]);
    const pdf = b.op('Mul', [b.op('Exp', [b.op('Mul', [b.op('Mul', [x, x]), b.scalar(-0.5)])]), b.scalar(1 / Math.sqrt(2 * Math.PI))]);
    return b.op('Add', [cdf, b.op('Mul', [x, pdf])]);
  }),
  Softplus: chain(({ b }, v) => b.op('Sigmoid', [v.x])),
  Exp: chain((ctx, v) => v.y),
  Log: chain(({ b }, v) => b.op('Reciprocal', [v.x])),
  Sqrt: chain(({ b }, v) => b.op('Div', [b.scalar(0.5), v.y])),
  Reciprocal: chain(({ b }, v) => b.op('Neg', [b.op('Mul', [v.y, v.y])])),
  Neg: (ctx, node, g) => [[dataInput(node), ctx.b.op('Neg', [g])]],
  Abs: chain(({ b }, v) => b.op('Sign', [v.x])),
  // x^p with a constant p: p·x^(p−1)
  Pow: (ctx, node, g) => {
    const [x, exponent] = node.proto.input;
    const p = ctx.value(exponent);
    if (ctx.isData(exponent) || !p || p.length !== 1) throw new UnsupportedOpError(node, 'has an exponent that is not one constant');
    const { b } = ctx;
    const derivative =
      p[0] === 2 ? b.op('Mul', [ctx.perItem(x), b.scalar(2)]) : b.op('Mul', [b.op('Pow', [ctx.perItem(x), b.scalar(p[0] - 1)]), b.scalar(p[0])]);
    return [[x, b.op('Mul', [g, derivative])]];
  },

  // y = softmax(x): ∂x = y·(g − Σ g·y) along the axis
  Softmax: (ctx, node, g) => {
    const { b } = ctx;
    const axis = softmaxAxis(ctx, node);
    const y = ctx.perItem(node.proto.output[0]);
    return [[dataInput(node), b.op('Mul', [y, b.op('Sub', [g, b.reduceSum(b.op('Mul', [g, y]), [axis], 1)])])]];
  },
  // y = log softmax(x): ∂x = g − eʸ·Σ g
  LogSoftmax: (ctx, node, g) => {
    const { b } = ctx;
    const y = ctx.perItem(node.proto.output[0]);
    return [[dataInput(node), b.op('Sub', [g, b.op('Mul', [b.op('Exp', [y]), b.reduceSum(g, [softmaxAxis(ctx, node)], 1)])])]];
  },

  Add: binary((ctx, g) => [g, g]),
  Sub: binary((ctx, g) => [g, ctx.b.op('Neg', [g])]),
  Mul: (ctx, node, g) => {
    const silu = siluInput(ctx, node);
    if (silu) {
      // SiLU, y = x·σ(x) (EfficientNet): one rule for the pair, σ·(1 + x·(1 − σ)) = σ·(1 + x − y),
      // instead of the product rule and Sigmoid's each reading the item's x and σ. Written with
      // y, it is three passes over the image's values instead of four.
      const { b } = ctx;
      const sigma = ctx.b.source.producer.get(silu.sigmoid)!.proto.output[0];
      const slope = b.op('Mul', [sigma, b.op('Add', [b.op('Sub', [silu.x, node.proto.output[0]]), b.scalar(1)])]);
      return [[silu.x, b.op('Mul', [g, ctx.perItem(slope, silu.x)])]];
    }
    return binary((ctx, g, a, c) => [ctx.b.op('Mul', [g, operand(ctx, c)]), ctx.b.op('Mul', [g, operand(ctx, a)])])(ctx, node, g);
  },
  Div: (ctx, node, g) => {
    const [a, c] = node.proto.input;
    // x / f(x) through an AveragePool: torch's decomposed LocalResponseNorm, which lrn: IDENTITY passes as identity.
    if (ctx.isData(c) && ctx.isData(a) && ctx.dependsOnlyOn(c, a) && ctx.reachesThrough(c, a, 'AveragePool')) {
      if (ctx.lrn === 'IDENTITY') return [[a, g]];
      throw new UnsupportedOpError(
        node,
        'ends a decomposed normalisation (torch exports LocalResponseNorm this way): only lrn: IDENTITY is supported for it; re-export with a native LRN node for GRADIENT',
      );
    }
    // y = a / c: ∂a = g / c, ∂c = −g·y / c
    return binary((ctx, g, a, c) => {
      const divisor = operand(ctx, c);
      const ga = ctx.b.op('Div', [g, divisor]);
      return [ga, ctx.isData(c) ? ctx.b.op('Neg', [ctx.b.op('Mul', [ga, ctx.perItem(node.proto.output[0])])]) : undefined];
    })(ctx, node, g, []);
  },
  Sum: (ctx, node, g) => node.proto.input.filter((i) => ctx.isData(i)).map((i) => [i, unbroadcast(ctx, node, g, i)]),

  // Where with a constant condition: the signal goes to the branch each position took.
  Where: (ctx, node, g) => {
    const [condition, a, c] = node.proto.input;
    if (ctx.isData(condition) || ctx.value(condition) === undefined) throw new UnsupportedOpError(node, 'has a condition computed from the image');
    const { b } = ctx;
    const signals: Signals = [];
    if (ctx.isData(a)) signals.push([a, unbroadcast(ctx, node, b.op('Where', [condition, g, b.scalar(0)]), a)]);
    if (ctx.isData(c)) signals.push([c, unbroadcast(ctx, node, b.op('Where', [condition, b.scalar(0), g]), c)]);
    return signals;
  },
};

/** For Mul(x, Sigmoid(x)) whose Sigmoid feeds nothing else: x and the Sigmoid's output. */
function siluInput(ctx: RuleContext, node: GraphNode): { x: string; sigmoid: string } | undefined {
  const graph = ctx.b.source;
  const [a, c] = node.proto.input;
  for (const [x, s] of [
    [a, c],
    [c, a],
  ]) {
    const producer = graph.producer.get(s);
    if (producer?.op === 'Sigmoid' && producer.proto.input[0] === x && graph.consumers.get(s)?.length === 1) return { x, sigmoid: s };
  }
  return undefined;
}

function softmaxAxis(ctx: RuleContext, node: GraphNode): number {
  const rank = ctx.shape(dataInput(node)).length + 1;
  if (ctx.b.opset < 13) throw new UnsupportedOpError(node, 'is a Softmax of opset < 13 (over flattened axes) inside the graph');
  return normalAxis(attrInt(node.proto, 'axis', -1), rank);
}

/** Ops whose rules read the item's values at the same position only: they run unchanged on a region. */
export const POINTWISE_OPS = [
  'Identity',
  'Dropout',
  'Cast',
  'Relu',
  'Clip',
  'Sigmoid',
  'Tanh',
  'HardSigmoid',
  'HardSwish',
  'LeakyRelu',
  'Elu',
  'Erf',
  'Gelu',
  'Softplus',
  'Exp',
  'Log',
  'Sqrt',
  'Reciprocal',
  'Neg',
  'Abs',
];
