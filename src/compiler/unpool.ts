/**
 * Max-pool unpooling: the signal goes to each window's switch (its first maximum in raster
 * order), summed where overlapping windows share one (docs/architecture.md: the deconvnet).
 */
import { attrInt, GraphNode } from '../onnx/graph';
import { Window, windowOf } from '../onnx/ops';
import { Regions, RegionSignal } from './regions';
import { dataInput, LAST, RuleContext, UnsupportedOpError } from './rule-context';
import { cropTo, startOf } from './transpose-window';

/** A MaxPool's window, if the unpooling supports it. */
export function poolWindow(ctx: RuleContext, node: GraphNode): Window {
  const [, H, W] = ctx.shape(dataInput(node));
  const win = windowOf(ctx.b.source, node, [H, W]);
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
export function unpoolAtIndices(ctx: RuleContext, node: GraphNode, g: string, win: Window, inShape: number[]): string {
  const { b } = ctx;
  const [C, H, W] = inShape;
  const switches = ctx.perItemIndices(b.poolIndices(node.proto), C * H * W);
  return b.reshape(scatterSum(ctx, g, switches, win, [C * H * W], 1), [-1, C, H, W]);
}

/**
 * Adds each value of `g` [N, C, h, w] into a zero canvas [N, …canvas] at its index in `at`
 * (same shape as g) along `axis`: the sum at shared switches that unpooling needs.
 */
function scatterSum(ctx: RuleContext, g: string, at: string, win: Window, canvas: number[], axis: number): string {
  const { b } = ctx;
  const flat = (t: string) => b.reshape(t, [0, ...canvas.slice(0, -1), -1]);
  let sum = b.zeros(g, canvas);
  if (ctx.unpool === 'SCATTER_ADD') return b.op('ScatterElements', [sum, flat(at), flat(g)], { axis, reduction: 'add' });
  const groups = [0, 1].map((a) => Math.ceil(win.kernel[a] / win.strides[a]));
  for (let gy = 0; gy < groups[0]; gy++) {
    for (let gx = 0; gx < groups[1]; gx++) {
      const part = (t: string) =>
        groups[0] * groups[1] === 1 ? t : b.op('Slice', [t, b.ints([gy, gx]), b.ints([LAST, LAST]), b.ints([2, 3]), b.ints(groups)]);
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
export function unpoolRegion(ctx: RuleContext, node: GraphNode, g: RegionSignal, regions: Regions): [string, RegionSignal][] {
  const { b } = ctx;
  const x = dataInput(node);
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
  const spare = b.ints(
    Array.from({ length: hg * wg }, (_, i) => h * w + i),
    [1, 1, hg, wg],
  );
  const at = b.op('Where', [regions.onMap(g.region, Ho, Wo), local, spare]);
  const sum = b.slice(scatterSum(ctx, g.tensor, at, win, [C, h * w + hg * wg], 2), [0], [h * w], [2]);
  return [[x, { tensor: b.reshape(sum, [0, C, h, w]), region }]];
}

/**
 * Unpooling for models older than opset 11 (no ScatterElements): switches recomputed from the
 * forward values. Tap (dy, dx) of window (oy, ox) is the switch if it holds the window's
 * maximum and no earlier tap (raster order) does.
 */
export function unpoolByTaps(ctx: RuleContext, node: GraphNode, g: string, win: Window, inShape: number[], outShape: number[]): string {
  const { b } = ctx;
  const x = dataInput(node);
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
  // noneYet: no earlier tap holds the maximum (And and Not only: ORT's WebGPU provider has no Or).
  let noneYet: string | undefined;
  const isSwitch = new Map<number, string>();
  for (let dy = 0; dy < kh; dy++) {
    for (let dx = 0; dx < kw; dx++) {
      const tapValues = b.op('Slice', [padded, b.ints([dy, dx]), b.ints([dy + (Ho - 1) * sh + 1, dx + (Wo - 1) * sw + 1]), b.ints([2, 3]), b.ints([sh, sw])]);
      const isMax = b.op('Equal', [tapValues, pooled]);
      isSwitch.set(dy * kw + dx, noneYet ? b.op('And', [isMax, noneYet]) : isMax);
      const notMax = b.op('Not', [isMax]);
      noneYet = noneYet ? b.op('And', [noneYet, notMax]) : notMax;
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
  const stacked =
    phases.length === 1
      ? phases[0]
      : b.reshape(
          b.op(
            'Concat',
            phases.map((p) => b.reshape(p, [-1, C, 1, rows, cols])),
            { axis: 2 },
          ),
          [-1, C * sh * sw, rows, cols],
        );
  const canvas = phases.length === 1 ? stacked : b.op('DepthToSpace', [stacked], { blocksize: sh, mode: 'CRD' });
  return cropTo(ctx, { tensor: canvas, size: [rows * sh, cols * sw], begin: startOf(win) }, inShape);
}
