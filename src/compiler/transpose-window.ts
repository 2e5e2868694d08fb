/**
 * Transposes of window ops (Conv, pools): the signal sent back over each output's window, with
 * the fastest form ORT runs for each case, cut or padded to the input's size.
 */
import { attrInt, GraphNode, OnnxGraph } from '../onnx/graph';
import { reach, Window } from '../onnx/ops';
import { toFloat32 } from '../onnx/tensor';
import { GraphBuilder } from './builder';
import { RuleContext } from './rule-context';

/**
 * Sends each output unit's signal back over its window: `weights` [C·kk, 1, kh, kw] per
 * group (one group per channel), cut or zero-padded to the input size.
 */
export function spreadOverWindows(ctx: RuleContext, g: string, weights: string, win: Window, inShape: number[], outShape: number[]): string {
  return cropTo(ctx, convTranspose(ctx, g, weights, inShape[0], win, [outShape[1], outShape[2]], [inShape[1], inShape[2]]), inShape);
}

/**
 * A transposed window op's output [N, C, rows, cols]: its first row and column at input
 * position `begin` (−padBegin, or 0 where the op cut itself); past the op's reach (rows
 * (h−1)·s + d·(k−1) + 1 for h outputs) only zeros.
 */
export interface Canvas {
  tensor: string;
  size: [number, number];
  begin: [number, number];
}

/** Where a window op's transpose begins in its input: row and column −padBegin. */
export function startOf(win: Window): [number, number] {
  return [-win.padsBegin[0], -win.padsBegin[1]];
}

/** The extent a window op's transpose reaches from `size` [h, w] outputs. */
export function reachOf(win: Window, size: number[]): [number, number] {
  return [reach(size[0], win.kernel[0], win.strides[0], win.dilations[0]), reach(size[1], win.kernel[1], win.strides[1], win.dilations[1])];
}

/**
 * The transposed conv of a Conv node over (at least) the whole extent its `size` [h, w] outputs
 * reach; with `fit` (the input's [H, W]), a ConvTranspose cuts and extends itself to it.
 */
export function transposedConv(ctx: RuleContext, node: GraphNode, g: string, win: Window, size: number[], fit?: number[]): Canvas {
  const { b } = ctx;
  const group = attrInt(node.proto, 'group', 1);
  const begin = startOf(win);
  const flipped = win.strides.every((st) => st === 1) ? transposedKernel(ctx, node.proto.input[1], group) : undefined;
  if (flipped) {
    // Stride 1: the transposed conv is a plain conv with the kernel flipped and its in/out
    // channels swapped, which ORT runs with its fastest kernels.
    const span = [0, 1].map((a) => (win.kernel[a] - 1) * win.dilations[a]);
    return { tensor: b.op('Conv', [g, flipped], { group, dilations: win.dilations, pads: [...span, ...span] }), size: reachOf(win, size), begin };
  }
  const phases = group === 1 && win.dilations.every((d) => d === 1) ? phaseKernel(ctx, node.proto.input[1], win) : undefined;
  if (phases) {
    // Strided: the transposed conv is, per output phase (Y mod s, X mod s), a plain conv with
    // a sub-kernel; one conv computes all s² phases as channels, DepthToSpace interleaves them.
    const [Th, Tw] = phases.taps;
    const stacked = b.op('Conv', [g, phases.kernel], { pads: [Th - 1, Tw - 1, Th - 1, Tw - 1] });
    const canvas = b.op('DepthToSpace', [stacked], { blocksize: win.strides[0], mode: 'CRD' });
    return { tensor: canvas, size: [win.strides[0] * (size[0] + Th - 1), win.strides[1] * (size[1] + Tw - 1)], begin };
  }
  return convTranspose(ctx, g, node.proto.input[1], group, win, size, fit);
}

/**
 * A ConvTranspose over `size` [h, w] outputs. With `fit` (the input's [H, W]) it starts at the
 * input's first row (its `pads` cut the rows before and past the input) and reaches the last by
 * its `output_padding` where fewer than a stride are missing (ResNet's 1×1 stride-2
 * downsampling reaches 55 of 56 rows): no copy after it.
 */
function convTranspose(ctx: RuleContext, g: string, weights: string, group: number, win: Window, size: number[], fit?: number[]): Canvas {
  const extent = reachOf(win, size);
  const attributes = { group, strides: win.strides, dilations: win.dilations };
  if (!fit) return { tensor: ctx.b.op('ConvTranspose', [g, weights], attributes), size: extent, begin: startOf(win) };
  const cut = [0, 1].map((a) => Math.max(0, extent[a] - win.padsBegin[a] - fit[a]));
  const extra = [0, 1].map((a) => {
    const missing = fit[a] - (extent[a] - win.padsBegin[a]);
    return missing > 0 && missing < win.strides[a] ? missing : 0;
  });
  const tensor = ctx.b.op('ConvTranspose', [g, weights], {
    ...attributes,
    pads: [...win.padsBegin, ...cut],
    ...(extra.some(Boolean) ? { output_padding: extra } : {}),
  });
  const rows = [0, 1].map((a) => extent[a] - win.padsBegin[a] - cut[a] + extra[a]);
  return { tensor, size: [rows[0], rows[1]], begin: [0, 0] };
}

/** A transposed window op's canvas cut or extended to the input's [H, W]. */
export function cropTo(ctx: RuleContext, canvas: Canvas, inShape: number[]): string {
  const { b } = ctx;
  const [, H, W] = inShape;
  const span = canvas.size;
  const [pt, pl] = [-canvas.begin[0], -canvas.begin[1]];
  const uncut = pt === 0 && pl === 0 && span[0] <= H && span[1] <= W;
  let out = uncut ? canvas.tensor : b.slice(canvas.tensor, [pt, pl], [Math.min(span[0], pt + H), Math.min(span[1], pl + W)], [2, 3]);
  const missing = [H - (span[0] - pt), W - (span[1] - pl)].map((m) => Math.max(0, m));
  if (missing[0] || missing[1]) out = b.pad(out, [0, 0, 0, 0, 0, 0, missing[0], missing[1]]);
  return out;
}

/** Flipped kernels already in a graph being built, by weight (one copy however often asked for). */
const flippedKernels = new WeakMap<GraphBuilder, Map<string, string>>();

/**
 * Kernels derived from a model's weights (flipped, phase-split), kept with the model: each is
 * made once however many graphs use it (making one costs ~1 s on ResNet-50's convs).
 */
const derivedKernels = new WeakMap<OnnxGraph, Map<string, Float32Array>>();

function derived(graph: OnnxGraph, key: string, make: () => Float32Array): Float32Array {
  let made = derivedKernels.get(graph);
  if (!made) derivedKernels.set(graph, (made = new Map()));
  let values = made.get(key);
  if (!values) made.set(key, (values = make()));
  return values;
}

/**
 * A conv kernel W [M, C/g, kh, kw] flipped in space with in/out channels swapped per group:
 * [C, M/g, kh, kw], the kernel of the conv that is its transpose at stride 1.
 */
export function transposedKernel(ctx: RuleContext, weight: string, group: number): string | undefined {
  const t = ctx.b.source.initializers.get(weight);
  if (!t) return undefined;
  let made = flippedKernels.get(ctx.b);
  if (!made) flippedKernels.set(ctx.b, (made = new Map()));
  const done = made.get(weight);
  if (done) return done;
  const [M, Cg, kh, kw] = (t.dims ?? []).map(Number);
  const Mg = M / group;
  const out = derived(ctx.b.source, `flipped/${weight}/${group}`, () => {
    const w = toFloat32(t);
    const flippedValues = new Float32Array(w.length);
    for (let gi = 0; gi < group; gi++) {
      for (let m = 0; m < Mg; m++) {
        for (let c = 0; c < Cg; c++) {
          for (let i = 0; i < kh; i++) {
            for (let j = 0; j < kw; j++) {
              flippedValues[(((gi * Cg + c) * Mg + m) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)] = w[(((gi * Mg + m) * Cg + c) * kh + i) * kw + j];
            }
          }
        }
      }
    }
    return flippedValues;
  });
  const flipped = ctx.b.floatArray(out, [Cg * group, Mg, kh, kw], 'flipped_kernel');
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
  const t = ctx.b.source.initializers.get(weight);
  if (!t) return undefined;
  const [M, C, kh, kw] = (t.dims ?? []).map(Number);
  const [sh, sw] = win.strides;
  if (sh !== sw) return undefined; // DepthToSpace takes one block size
  // A kernel smaller than the stride leaves phases without taps: all-zero channels, as much
  // work again as the rest (a 1×1 stride-2 conv: four times); ConvTranspose does it plainly.
  if (kh < sh || kw < sw) return undefined;
  const Th = Math.ceil(kh / sh);
  const Tw = Math.ceil(kw / sw);
  const out = derived(ctx.b.source, `phases/${weight}/${sh}`, () => {
    const w = toFloat32(t);
    const phases = new Float32Array(C * sh * sw * M * Th * Tw);
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
                phases[((o * M + m) * Th + u) * Tw + v] = w[((m * C + c) * kh + i) * kw + j];
              }
            }
          }
        }
      }
    }
    return phases;
  });
  return { kernel: ctx.b.floatArray(out, [C * sh * sw, M, Th, Tw], 'phase_kernel'), taps: [Th, Tw] };
}
