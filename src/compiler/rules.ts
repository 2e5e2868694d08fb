/**
 * The top-down rules of the deconvnet (DESIGN.md §3), one entry per ONNX op: given the signal
 * `g` arriving at a node's output, the signals sent to its data inputs. Only ReLU-like ops
 * differ between methods; everything else is the exact gradient (no biases going down).
 */
import { attrFloat, attrInt, attrInts, attrString, GraphNode } from '../onnx/graph';
import { reach, windowOf, Window } from '../onnx/ops';
import { toFloat32 } from '../onnx/tensor';
import { GraphBuilder } from './builder';
import { Regions, RegionSignal } from './regions';

export type Method = 'DECONVNET' | 'GUIDED_BACKPROP' | 'SALIENCY';
export type LrnMode = 'IDENTITY' | 'GRADIENT';
/**
 * How max-pools unpool: through the forward MaxPool's Indices with one scatter-add (opset ≥ 16)
 * or with scatters in groups of disjoint windows (opset ≥ 11), else by recomputed switches.
 */
export type Unpool = 'SCATTER_ADD' | 'SCATTER_GROUPS' | 'TAPS';

export interface RuleContext {
  b: GraphBuilder;
  method: Method;
  lrn: LrnMode;
  unpool: Unpool;
  /** Per-image shape of an activation. */
  shape(tensor: string): number[];
  /** A forward tensor, gathered so that row n belongs to item n of the batch. */
  perItem(tensor: string): string;
  /** Flat indices into the images of the batch (MaxPool's Indices), gathered per item and made relative to the item's image of `size` elements. */
  perItemIndices(indices: string, size: number): string;
  /** True for activations (tensors computed from the image). */
  isData(tensor: string): boolean;
  /** True when `tensor` is computed from `source` alone (no other path to the image). */
  dependsOnlyOn(tensor: string, source: string): boolean;
}

/** [input tensor, its signal] pairs. */
export type Signals = [string, string][];
export type Rule = (ctx: RuleContext, node: GraphNode, g: string) => Signals;

export class UnsupportedOpError extends Error {
  constructor(
    readonly node: GraphNode,
    reason: string,
  ) {
    super(`${node.op} node "${node.name}" ${reason}`);
  }
}

const data = (ctx: RuleContext, node: GraphNode) => node.proto.input[0];
const identity: Rule = (ctx, node, g) => [[data(ctx, node), g]];

/** relu(g), relu(g)·[x in range] or g·[x in range], per method. */
function reluLike(ctx: RuleContext, node: GraphNode, g: string, inRange: (x: string) => string): Signals {
  const { b } = ctx;
  const x = data(ctx, node);
  if (ctx.method === 'DECONVNET') return [[x, b.op('Relu', [g])]];
  const pass = inRange(ctx.perItem(x));
  const signal = ctx.method === 'GUIDED_BACKPROP' ? b.op('Relu', [g]) : g;
  return [[x, b.op('Where', [pass, signal, b.scalar(0)])]];
}

/**
 * Sends each output unit's signal back over its window: `weights` [C·kk, 1, kh, kw] per
 * group (one group per channel), then crops or zero-pads to the input size.
 */
function spreadOverWindows(ctx: RuleContext, g: string, weights: string, win: Window, inShape: number[], outShape: number[]): string {
  const full = ctx.b.op('ConvTranspose', [g, weights], { group: inShape[0], strides: win.strides, dilations: win.dilations });
  return cropTo(ctx, full, win, inShape, outShape);
}

/**
 * The transposed conv of a Conv node over the whole extent its `size` [h, w] outputs reach:
 * (h−1)·s + d·(k−1) + 1 rows, the first at input row −padBegin (relative to the outputs' origin).
 */
function transposedConv(ctx: RuleContext, node: GraphNode, g: string, win: Window, size: number[]): string {
  const { b } = ctx;
  const group = attrInt(node.proto, 'group', 1);
  const extent = [0, 1].map((a) => reach(size[a], win.kernel[a], win.strides[a], win.dilations[a]));
  const flipped = win.strides.every((st) => st === 1) ? transposedKernel(ctx, node.proto.input[1], group) : undefined;
  if (flipped) {
    // Stride 1: the transposed conv is a plain conv with the kernel flipped and its in/out
    // channels swapped, which ORT runs with its fastest kernels.
    const span = [0, 1].map((a) => (win.kernel[a] - 1) * win.dilations[a]);
    return b.op('Conv', [g, flipped], { group, dilations: win.dilations, pads: [...span, ...span] });
  }
  const phases = group === 1 && win.dilations.every((d) => d === 1) ? phaseKernel(ctx, node.proto.input[1], win) : undefined;
  if (phases) {
    // Strided: the transposed conv is, per output phase (Y mod s, X mod s), a plain conv with
    // a sub-kernel; one conv computes all s² phases as channels, DepthToSpace interleaves them.
    const [Th, Tw] = phases.taps;
    const stacked = b.op('Conv', [g, phases.kernel], { pads: [Th - 1, Tw - 1, Th - 1, Tw - 1] });
    const canvas = b.op('DepthToSpace', [stacked], { blocksize: win.strides[0], mode: 'CRD' });
    return b.slice(canvas, [0, 0], extent, [2, 3]);
  }
  return b.op('ConvTranspose', [g, node.proto.input[1]], { group, strides: win.strides, dilations: win.dilations });
}

/** A transposed window op's full output starts at −padBegin: cut or extend it to [H, W]. */
function cropTo(ctx: RuleContext, full: string, win: Window, inShape: number[], outShape: number[]): string {
  const { b } = ctx;
  const [, H, W] = inShape;
  const [, Ho, Wo] = outShape;
  const span = [0, 1].map((a) => reach([Ho, Wo][a], win.kernel[a], win.strides[a], win.dilations[a]));
  const [pt, pl] = win.padsBegin;
  const uncut = pt === 0 && pl === 0 && span[0] <= H && span[1] <= W;
  let out = uncut ? full : b.slice(full, [pt, pl], [Math.min(span[0], pt + H), Math.min(span[1], pl + W)], [2, 3]);
  const missing = [H - (span[0] - pt), W - (span[1] - pl)].map((m) => Math.max(0, m));
  if (missing[0] || missing[1]) out = b.pad(out, [0, 0, 0, 0, 0, 0, missing[0], missing[1]]);
  return out;
}

const RULES: Record<string, Rule> = {
  Identity: identity,
  Dropout: identity,

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

  Conv: (ctx, node, g) => {
    const x = data(ctx, node);
    const inShape = ctx.shape(x);
    const outShape = ctx.shape(node.proto.output[0]);
    const win = windowOf(ctxGraph(ctx), node, [inShape[1], inShape[2]]);
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
    return [[x, cropTo(ctx, transposedConv(ctx, node, g, win, [outShape[1], outShape[2]]), win, inShape, outShape)]];
  },

  MaxPool: (ctx, node, g) => {
    const x = data(ctx, node);
    const inShape = ctx.shape(x);
    const outShape = ctx.shape(node.proto.output[0]);
    const win = poolWindow(ctx, node);
    const unpooled = ctx.unpool !== 'TAPS' ? unpoolAtIndices(ctx, node, g, win, inShape, outShape) : unpoolByTaps(ctx, node, g, win, inShape, outShape);
    return [[x, unpooled]];
  },

  AveragePool: (ctx, node, g) => {
    const { b } = ctx;
    const x = data(ctx, node);
    const inShape = ctx.shape(x);
    const [C, H, W] = inShape;
    const outShape = ctx.shape(node.proto.output[0]);
    const [, Ho, Wo] = outShape;
    const win = windowOf(ctxGraph(ctx), node, [H, W]);
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
    const [, H, W] = ctx.shape(data(ctx, node));
    return [[data(ctx, node), ctx.b.op('Mul', [g, ctx.b.floats(new Float32Array(H * W).fill(1 / (H * W)), [1, 1, H, W])])]];
  },

  BatchNormalization: (ctx, node, g) => {
    const { b } = ctx;
    const [, scale, , , variance] = node.proto.input;
    const C = ctx.shape(data(ctx, node))[0];
    const eps = attrFloat(node.proto, 'epsilon', 1e-5);
    const factor = b.op('Div', [scale, b.op('Sqrt', [b.op('Add', [variance, b.scalar(eps)])])]);
    return [[data(ctx, node), b.op('Mul', [g, b.reshape(factor, [1, C, 1, 1])])]];
  },

  LRN: (ctx, node, g) => {
    if (ctx.lrn === 'IDENTITY') return identity(ctx, node, g);
    return [[data(ctx, node), lrnGradient(ctx, node, g)]];
  },

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

  MatMul: (ctx, node, g) => {
    const [a, weights] = node.proto.input;
    if (ctx.isData(weights) || !ctx.isData(a)) throw new UnsupportedOpError(node, 'does not multiply an activation by constant weights');
    return [[a, ctx.b.op('MatMul', [g, ctx.b.op('Transpose', [weights], { perm: [1, 0] })])]];
  },

  Add: (ctx, node, g) => sumRule(ctx, node, g),
  Sum: (ctx, node, g) => sumRule(ctx, node, g),

  Sub: (ctx, node, g) => {
    const [a, c] = node.proto.input;
    if (ctx.isData(c)) throw new UnsupportedOpError(node, 'subtracts an activation');
    return [[a, g]];
  },

  Mul: (ctx, node, g) => {
    const [a, c] = node.proto.input;
    if (ctx.isData(c) === ctx.isData(a)) throw new UnsupportedOpError(node, 'multiplies two activations');
    return ctx.isData(a) ? [[a, ctx.b.op('Mul', [g, c])]] : [[c, ctx.b.op('Mul', [g, a])]];
  },

  Div: (ctx, node, g) => {
    const [a, c] = node.proto.input;
    if (!ctx.isData(c)) return [[a, ctx.b.op('Div', [g, c])]];
    // x / f(x): torch's decomposed LocalResponseNorm (and similar normalisations).
    if (ctx.dependsOnlyOn(c, a)) {
      if (ctx.lrn === 'IDENTITY') return [[a, g]];
      throw new UnsupportedOpError(node, 'ends a decomposed normalisation (torch exports LocalResponseNorm this way): only lrn: IDENTITY is supported for it; re-export with a native LRN node for GRADIENT');
    }
    throw new UnsupportedOpError(node, 'divides by another activation');
  },

  Concat: (ctx, node, g) => {
    const rank = ctx.shape(node.proto.output[0]).length + 1;
    let axis = attrInt(node.proto, 'axis', 1);
    if (axis < 0) axis += rank;
    if (axis === 0) throw new UnsupportedOpError(node, 'concatenates along the batch axis');
    const signals: Signals = [];
    let start = 0;
    for (const input of node.proto.input) {
      if (!ctx.isData(input)) throw new UnsupportedOpError(node, `concatenates a constant (${input}) to activations`);
      const size = ctx.shape(input)[axis - 1];
      signals.push([input, ctx.b.slice(g, [start], [start + size], [axis])]);
      start += size;
    }
    return signals;
  },

  Pad: (ctx, node, g) => {
    const pads = node.proto.input[1] ? ctxGraph(ctx).constant(node.proto.input[1]) : attrInts(node.proto, 'pads');
    if (attrString(node.proto, 'mode', 'constant') !== 'constant' || !pads || pads.some((p) => p < 0) || node.proto.input[3]) {
      throw new UnsupportedOpError(node, 'is not a constant zero padding with fixed pads');
    }
    const x = data(ctx, node);
    const shape = ctx.shape(x);
    const rank = shape.length + 1;
    if (pads[0] !== 0 || pads[rank] !== 0) throw new UnsupportedOpError(node, 'pads the batch axis');
    if (pads.every((p) => p === 0)) return [[x, g]];
    const axes = shape.map((_, i) => i + 1);
    const starts = axes.map((a) => pads[a]);
    return [[x, ctx.b.slice(g, starts, axes.map((a, i) => starts[i] + shape[i]), axes)]];
  },

  Flatten: (ctx, node, g) => reshapeBack(ctx, node, g),
  Reshape: (ctx, node, g) => reshapeBack(ctx, node, g),
  Squeeze: (ctx, node, g) => reshapeBack(ctx, node, g),
  Unsqueeze: (ctx, node, g) => reshapeBack(ctx, node, g),
};

/** A MaxPool's window, if the unpooling supports it. */
function poolWindow(ctx: RuleContext, node: GraphNode): Window {
  const [, H, W] = ctx.shape(data(ctx, node));
  const win = windowOf(ctxGraph(ctx), node, [H, W]);
  if (win.dilations.some((d) => d !== 1)) throw new UnsupportedOpError(node, 'has dilations, which the unpooling does not support');
  if (attrInt(node.proto, 'storage_order', 0) !== 0) throw new UnsupportedOpError(node, 'uses column-major storage_order');
  return win;
}

/**
 * Unpooling through the forward MaxPool's own Indices output (ORT's switch is the first
 * maximum in raster order, as the paper's rule wants: tested). Overlapping windows must add
 * up at a shared switch (ONNX MaxUnpool overwrites instead): one ScatterElements with
 * reduction 'add' (opset 16), or, before it, scatters in groups of outputs whose windows are
 * disjoint (ceil(k/s) apart along each axis), each adding to what the canvas holds.
 */
function unpoolAtIndices(ctx: RuleContext, node: GraphNode, g: string, win: Window, inShape: number[], outShape: number[]): string {
  const { b } = ctx;
  const [C, H, W] = inShape;
  const switches = ctx.perItemIndices(b.poolIndices(node.proto), C * H * W);
  return b.reshape(scatterSum(ctx, g, switches, win, [C * H * W], 1), [-1, C, H, W]);
}

/** Slice's "to the end". */
const LAST = 2 ** 31 - 1;

/**
 * Adds each value of `g` [N, C, h, w] into a zero canvas [N, …canvas] at its index in `at`
 * (same shape as g) along `axis`: the sum at shared switches that unpooling needs.
 */
function scatterSum(ctx: RuleContext, g: string, at: string, win: Window, canvas: number[], axis: number): string {
  const { b } = ctx;
  const flat = (t: string) => b.reshape(t, [0, ...canvas.slice(0, -1), -1]);
  const items = b.slice(b.op('Shape', [g]), [0], [1], [0]);
  let sum = b.op('ConstantOfShape', [b.op('Concat', [items, b.ints(canvas)], { axis: 0 })]);
  if (ctx.unpool === 'SCATTER_ADD') return b.op('ScatterElements', [sum, flat(at), flat(g)], { axis, reduction: 'add' });
  const groups = [0, 1].map((a) => Math.ceil(win.kernel[a] / win.strides[a]));
  for (let gy = 0; gy < groups[0]; gy++) {
    for (let gx = 0; gx < groups[1]; gx++) {
      const part = (t: string) => (groups[0] * groups[1] === 1 ? t : b.op('Slice', [t, b.ints([gy, gx]), b.ints([LAST, LAST]), b.ints([2, 3]), b.ints(groups)]));
      const indices = flat(part(at));
      const signal = flat(part(g));
      const first = gy === 0 && gx === 0;
      const total = first ? signal : b.op('Add', [b.op('GatherElements', [sum, indices], { axis }), signal]);
      sum = b.op('ScatterElements', [sum, indices, total], { axis });
    }
  }
  return sum;
}

/**
 * Unpooling a region signal. The switches are found again on the region the pool's windows
 * cover there, by a MaxPool with Indices over it (the same first-maximum rule as the forward
 * pool's, and positions off the map are −∞ as its padding is), so the forward MaxPool stays
 * the plain one ORT runs fastest. Then the same scatter as for whole maps.
 */
function unpoolRegion(ctx: RuleContext, node: GraphNode, g: RegionSignal, regions: Regions): [string, RegionSignal][] {
  const { b } = ctx;
  const x = data(ctx, node);
  const inShape = ctx.shape(x);
  const [C, H, W] = inShape;
  const win = poolWindow(ctx, node);
  const region = Regions.spread(g.region, win);
  const [h, w] = region.size;
  const values = b.op('Where', [regions.onMap(region, H, W), regions.gather(x, inShape, region), b.scalar(-Infinity)]);
  const [, switches] = b.opMulti('MaxPool', [values], { kernel_shape: win.kernel, strides: win.strides }, 2);
  // Outputs off the map carry zeros, and their windows may reach past the map: each goes to a
  // spare slot of its own past the region's end (cut off after), so that a plain scatter
  // (SCATTER_GROUPS) never sees one index twice.
  const [, Ho, Wo] = ctx.shape(node.proto.output[0]);
  const [hg, wg] = g.region.size;
  const local = b.op('Mod', [switches, b.ints([h * w], [])]);
  const spare = b.ints(Array.from({ length: hg * wg }, (_, i) => h * w + i), [1, 1, hg, wg]);
  const at = b.op('Where', [regions.onMap(g.region, Ho, Wo), local, spare]);
  const sum = b.slice(scatterSum(ctx, g.tensor, at, win, [C, h * w + hg * wg], 2), [0], [h * w], [2]);
  return [[x, { tensor: b.reshape(sum, [0, C, h, w]), region }]];
}

/** A Conv's transpose on a region signal, over the region it spreads to (masked to the input map). */
function convRegion(ctx: RuleContext, node: GraphNode, g: RegionSignal, regions: Regions): [string, RegionSignal][] {
  const x = data(ctx, node);
  const [, H, W] = ctx.shape(x);
  const win = windowOf(ctxGraph(ctx), node, [H, W]);
  const region = Regions.spread(g.region, win);
  const spread = transposedConv(ctx, node, g.tensor, win, g.region.size);
  return [[x, { tensor: ctx.b.op('Mul', [spread, regions.onMapAsFloat(region, H, W)]), region }]];
}

/**
 * Unpooling for models older than opset 11 (no ScatterElements): switches recomputed from the
 * forward values. Tap (dy, dx) of window (oy, ox) is the switch if it holds the window's
 * maximum and no earlier tap (raster order) does.
 */
function unpoolByTaps(ctx: RuleContext, node: GraphNode, g: string, win: Window, inShape: number[], outShape: number[]): string {
  const { b } = ctx;
  const x = data(ctx, node);
  const [C, H, W] = inShape;
  const [, Ho, Wo] = outShape;
  const [kh, kw] = win.kernel;
  const [sh, sw] = win.strides;
  const input = ctx.perItem(x);
  const pooled = ctx.perItem(node.proto.output[0]);
  const covered = [(Ho - 1) * sh + kh, (Wo - 1) * sw + kw];
  const padEnd = [Math.max(0, covered[0] - win.padsBegin[0] - H), Math.max(0, covered[1] - win.padsBegin[1] - W)];
  const pads = [0, 0, win.padsBegin[0], win.padsBegin[1], 0, 0, padEnd[0], padEnd[1]];
  const padded = pads.some((p) => p > 0) ? b.op('Pad', [input, b.ints(pads), b.scalar(-Infinity)], { mode: 'constant' }) : input;
  let found: string | undefined;
  const isSwitch = new Map<number, string>();
  for (let dy = 0; dy < kh; dy++) {
    for (let dx = 0; dx < kw; dx++) {
      const tapValues = b.op('Slice', [padded, b.ints([dy, dx]), b.ints([dy + (Ho - 1) * sh + 1, dx + (Wo - 1) * sw + 1]), b.ints([2, 3]), b.ints([sh, sw])]);
      const isMax = b.op('Equal', [tapValues, pooled]);
      isSwitch.set(dy * kw + dx, found ? b.op('And', [isMax, b.op('Not', [found])]) : isMax);
      found = found ? b.op('Or', [found, isMax]) : isMax;
    }
  }
  // Tap (dy, dx) of window (oy, ox) sits at canvas pixel (oy·s + dy, ox·s + dx). Taps fall
  // into s×s phases (dy mod s, dx mod s), each shifted by (dy div s, dx div s) windows; the
  // phases are then interleaved with DepthToSpace. Overlapping windows add up at a shared
  // switch, which is the exact gradient (ONNX MaxUnpool would overwrite instead).
  const extra = [Math.floor((kh - 1) / sh), Math.floor((kw - 1) / sw)];
  const zero = b.scalar(0);
  const phases: string[] = [];
  for (let py = 0; py < sh; py++) {
    for (let px = 0; px < sw; px++) {
      let sum: string | undefined;
      for (let dy = py; dy < kh; dy += sh) {
        for (let dx = px; dx < kw; dx += sw) {
          const routed = b.op('Where', [isSwitch.get(dy * kw + dx)!, g, zero]);
          const qy = Math.floor(dy / sh);
          const qx = Math.floor(dx / sw);
          const shifted = b.pad(routed, [0, 0, qy, qx, 0, 0, extra[0] - qy, extra[1] - qx]);
          sum = sum ? b.op('Add', [sum, shifted]) : shifted;
        }
      }
      phases.push(sum ?? b.op('Mul', [b.pad(g, [0, 0, 0, 0, 0, 0, extra[0], extra[1]]), zero]));
    }
  }
  const rows = Ho + extra[0];
  const cols = Wo + extra[1];
  const stacked = phases.length === 1 ? phases[0] : b.reshape(b.op('Concat', phases.map((p) => b.reshape(p, [-1, C, 1, rows, cols])), { axis: 2 }), [-1, C * sh * sw, rows, cols]);
  const canvas = phases.length === 1 ? stacked : b.op('DepthToSpace', [stacked], { blocksize: sh, mode: 'CRD' });
  const span: Window = { ...win, kernel: [rows * sh - (Ho - 1) * sh, cols * sw - (Wo - 1) * sw] };
  return cropTo(ctx, canvas, span, inShape, outShape);
}

/** Flipped kernels already in a graph being built, by weight (one copy however often asked for). */
const flippedKernels = new WeakMap<GraphBuilder, Map<string, string>>();

/**
 * A conv kernel W [M, C/g, kh, kw] flipped in space with in/out channels swapped per group:
 * [C, M/g, kh, kw], the kernel of the conv that is its transpose at stride 1.
 */
function transposedKernel(ctx: RuleContext, weight: string, group: number): string | undefined {
  const t = ctxGraph(ctx).initializers.get(weight);
  if (!t) return undefined;
  let made = flippedKernels.get(ctx.b);
  if (!made) flippedKernels.set(ctx.b, (made = new Map()));
  const done = made.get(weight);
  if (done) return done;
  const [M, Cg, kh, kw] = (t.dims ?? []).map(Number);
  const w = toFloat32(t);
  const Mg = M / group;
  const out = new Float32Array(w.length);
  for (let gi = 0; gi < group; gi++) {
    for (let m = 0; m < Mg; m++) {
      for (let c = 0; c < Cg; c++) {
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            out[(((gi * Cg + c) * Mg + m) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)] = w[(((gi * Mg + m) * Cg + c) * kh + i) * kw + j];
          }
        }
      }
    }
  }
  const flipped = ctx.b.floats(out, [Cg * group, Mg, kh, kw], 'flipped_kernel');
  made.set(weight, flipped);
  return flipped;
}

/**
 * For a stride-s conv (one group, no dilation) with kernel W [M, C, kh, kw]: the kernel of the
 * conv whose output channel c·s² + py·s + px is phase (py, px) of the transposed conv's canvas,
 * [C·sh·sw, M, Th, Tw] with T = ⌈k/s⌉ taps per phase: K[c, py, px][m, u, v] =
 * W[m, c, py + s·(Th−1−u), px + s·(Tw−1−v)] (zero where that is outside the kernel).
 * Only when the stride divides the work: otherwise (s = 1 is handled by transposedKernel).
 */
function phaseKernel(ctx: RuleContext, weight: string, win: Window): { kernel: string; taps: [number, number] } | undefined {
  const t = ctxGraph(ctx).initializers.get(weight);
  if (!t) return undefined;
  const [M, C, kh, kw] = (t.dims ?? []).map(Number);
  const [sh, sw] = win.strides;
  if (sh !== sw) return undefined; // DepthToSpace takes one block size
  const w = toFloat32(t);
  const Th = Math.ceil(kh / sh);
  const Tw = Math.ceil(kw / sw);
  const out = new Float32Array(C * sh * sw * M * Th * Tw);
  for (let c = 0; c < C; c++) {
    for (let py = 0; py < sh; py++) {
      for (let px = 0; px < sw; px++) {
        const o = (c * sh + py) * sw + px;
        for (let m = 0; m < M; m++) {
          for (let u = 0; u < Th; u++) {
            const i = py + sh * (Th - 1 - u);
            if (i >= kh) continue;
            for (let v = 0; v < Tw; v++) {
              const j = px + sw * (Tw - 1 - v);
              if (j >= kw) continue;
              out[((o * M + m) * Th + u) * Tw + v] = w[((m * C + c) * kh + i) * kw + j];
            }
          }
        }
      }
    }
  }
  return { kernel: ctx.b.floats(out, [C * sh * sw, M, Th, Tw], 'phase_kernel'), taps: [Th, Tw] };
}

function reshapeBack(ctx: RuleContext, node: GraphNode, g: string): Signals {
  const x = data(ctx, node);
  return [[x, ctx.b.reshape(g, [-1, ...ctx.shape(x)])]];
}

function sumRule(ctx: RuleContext, node: GraphNode, g: string): Signals {
  const out = ctx.shape(node.proto.output[0]).join(',');
  return node.proto.input
    .filter((i) => ctx.isData(i))
    .map((i) => {
      if (ctx.shape(i).join(',') !== out) throw new UnsupportedOpError(node, `broadcasts activation ${i}`);
      return [i, g] as [string, string];
    });
}

function clipBound(ctx: RuleContext, node: GraphNode, input: number, name: string, fallback: number): number {
  const tensor = node.proto.input[input];
  if (tensor) {
    const value = ctxGraph(ctx).constant(tensor);
    if (!value) throw new UnsupportedOpError(node, `has a computed ${name} bound`);
    return value[0];
  }
  return attrFloat(node.proto, name, fallback);
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

function ctxGraph(ctx: RuleContext) {
  return ctx.b.source;
}

/** The rule for a region signal (regions.ts) through `node`: rows [input, its region signal]. */
export type RegionRule = (ctx: RuleContext, node: GraphNode, g: RegionSignal, regions: Regions) => [string, RegionSignal][];

/** Ops that pass signals position by position: their rules run unchanged on a region. */
const POINTWISE = new Set(['Identity', 'Dropout', 'Relu', 'Clip', 'BatchNormalization', 'LRN', 'Add', 'Sum']);

const pointwiseRegion: RegionRule = (ctx, node, g, regions) => {
  const local: RuleContext = { ...ctx, perItem: (t) => regions.gather(t, ctx.shape(t), g.region) };
  return ruleFor(node)(local, node, g.tensor).map(([input, t]) => [input, { tensor: t, region: g.region }]);
};

/** How `node` passes a region signal down, or undefined where it needs the whole map. */
export function regionRuleFor(ctx: RuleContext, node: GraphNode): RegionRule | undefined {
  if (node.op === 'Conv') return convRegion;
  if (node.op === 'MaxPool') return unpoolRegion;
  const channelConcat = node.op === 'Concat' && [1, -3].includes(attrInt(node.proto, 'axis', 1));
  return POINTWISE.has(node.op) || channelConcat ? pointwiseRegion : undefined;
}

export function ruleFor(node: GraphNode): Rule {
  const rule = RULES[node.op];
  if (!rule || (node.proto.domain && node.proto.domain !== 'ai.onnx')) {
    throw new UnsupportedOpError(node, `is on the path to the target, and convscope cannot run ${node.op} backwards`);
  }
  return rule;
}

export const SUPPORTED_OPS = Object.keys(RULES).sort();
