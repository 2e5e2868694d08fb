/**
 * Keras layers (as TF.js saves them) → ONNX nodes, channels-last made channels-first: an image
 * tensor Keras [H, W, C] is ONNX [N, C, H, W], so kernels are transposed ([kh, kw, in, out] →
 * [out, in, kh, kw]), channel axes move to 1, and a Flatten or Reshape first puts the data back
 * in Keras's order (Transpose to NHWC) so that the Dense weights after it stay as they are.
 * Keras "same" padding is TensorFlow's: the extra pixel of an odd total goes at the end.
 */
import { Weight } from './files';
import { OnnxWriter, permute, Tensor } from './writer';
import { AttrValue } from '../compiler/builder';

export type Config = Record<string, unknown>;

/** What a layer's conversion works with: its name, its weights, and nodes named after it. */
export class LayerScope {
  constructor(
    private readonly writer: OnnxWriter,
    readonly name: string,
    readonly className: string,
    private readonly weights: Map<string, Weight>,
  ) {}

  fail(message: string): never {
    throw new Error(`layer "${this.name}" (${this.className}) ${message}`);
  }

  /** A node named `<layer>/<step>` (by default the op); the layer's last node is renamed to the layer's name. */
  op(opType: string, inputs: string[], shape: number[], attrs: Record<string, AttrValue> = {}, step = opType): Tensor {
    return { name: this.writer.node(opType, inputs, `${this.name}/${step}`, attrs), shape };
  }

  /** The layer's weight `key` (`<layer>/<key>` in the manifest), of the shape the config implies. */
  weight(key: string, shape: number[]): Weight {
    const name = `${this.name}/${key}`;
    let found = this.weights.get(name);
    if (!found) {
      // Nested name scopes (`outer/<layer>/<key>`) in models converted from Keras.
      const scoped = [...this.weights.keys()].filter((k) => k.endsWith(`/${name}`));
      if (scoped.length === 1) found = this.weights.get(scoped[0]);
    }
    if (!found) this.fail(`has no weight "${name}" in model.json's weightsManifest`);
    if (found.shape.join() !== shape.join()) this.fail(`has weight "${key}" of shape [${found.shape}], expected [${shape}]`);
    return found;
  }

  param(key: string, w: Weight): string {
    return this.writer.floats(`${this.name}/${key}`, w.shape, w.values);
  }

  ints(key: string, values: number[]): string {
    return this.writer.ints(`${this.name}/${key}`, values);
  }

  scalar(value: number): string {
    return this.writer.scalar(value);
  }
}

type Convert = (s: LayerScope, cfg: Config, inputs: Tensor[]) => Tensor;

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** Keras's `n` or `[a, b]` as [a, b], whole numbers of at least `min`. */
function pair(s: LayerScope, value: unknown, what: string, min = 1): [number, number] {
  const v = typeof value === 'number' ? [value, value] : value;
  if (!Array.isArray(v) || v.length !== 2 || v.some((x) => !Number.isInteger(x) || x < min))
    s.fail(`has ${what} ${JSON.stringify(value)}, expected two whole numbers of at least ${min}`);
  return v as [number, number];
}

function image(s: LayerScope, x: Tensor, cfg: Config): [number, number, number] {
  if (cfg.data_format !== undefined && cfg.data_format !== null && cfg.data_format !== 'channels_last') {
    s.fail(`is ${cfg.data_format}: convscope converts channels_last layers (the Keras and TF.js default)`);
  }
  if (x.shape.length !== 3) s.fail(`needs an image input [H, W, C], got [${x.shape}]`);
  return x.shape as [number, number, number];
}

/** Keras axis `axis` (batch axis 0, negative from the end) of an input of `rank` axes besides the batch, as 1…rank. */
function kerasAxis(s: LayerScope, rank: number, axis: unknown): number {
  const a = typeof axis === 'number' ? (axis < 0 ? axis + rank + 1 : axis) : NaN;
  if (!Number.isInteger(a) || a < 1 || a > rank) s.fail(`has axis ${JSON.stringify(axis)}, not a non-batch axis of its rank ${rank + 1} input`);
  return a;
}

/** The same axis in ONNX's layout (an image's channels are axis 1). */
function onnxAxis(s: LayerScope, rank: number, axis: unknown): number {
  const a = kerasAxis(s, rank, axis);
  return rank === 3 ? [0, 2, 3, 1][a] : a;
}

/** True when permuting axes of `dims` by `perm` moves data (not only axes of size 1). */
function reorders(dims: number[], perm: number[]): boolean {
  const kept = perm.filter((p) => dims[p] !== 1);
  return kept.some((p, i) => i > 0 && p < kept[i - 1]);
}

/** An image tensor's data in Keras's NHWC order (a Transpose where the order differs); other tensors as they are. */
function kerasOrder(s: LayerScope, x: Tensor): string {
  if (x.shape.length !== 3) return x.name;
  const [h, w, c] = x.shape;
  return reorders([c, h, w], [1, 2, 0]) ? s.op('Transpose', [x.name], x.shape, { perm: [0, 2, 3, 1] }).name : x.name;
}

interface Window {
  pads: number[];
  out: [number, number];
}

/** A sliding window's pads (ONNX [top, left, bottom, right]) and output size, by Keras's rules. */
function slide(s: LayerScope, size: [number, number], kernel: number[], strides: number[], dilations: number[], padding: unknown): Window {
  const pads = [0, 0, 0, 0];
  const out: [number, number] = [0, 0];
  for (const a of [0, 1]) {
    const span = (kernel[a] - 1) * dilations[a] + 1;
    if (padding === 'valid') {
      out[a] = Math.floor((size[a] - span) / strides[a]) + 1;
    } else if (padding === 'same') {
      out[a] = Math.ceil(size[a] / strides[a]);
      const total = Math.max(0, (out[a] - 1) * strides[a] + span - size[a]);
      pads[a] = Math.floor(total / 2);
      pads[a + 2] = total - pads[a];
    } else {
      s.fail(`has padding ${JSON.stringify(padding)}; convscope converts "same" and "valid"`);
    }
    if (out[a] < 1) s.fail(`has a ${kernel} window larger than its ${size[0]}×${size[1]} input`);
  }
  return { pads, out };
}

function normalise(activation: unknown): string {
  return String(activation ?? 'linear')
    .toLowerCase()
    .replace(/_/g, '');
}

/** The `activation` of a layer (Keras names, or TF.js's camel-case ones). */
export function activate(s: LayerScope, x: Tensor, activation: unknown): Tensor {
  const unary = (op: string, attrs: Record<string, AttrValue> = {}) => s.op(op, [x.name], x.shape, attrs);
  switch (normalise(activation)) {
    case 'linear':
      return x;
    case 'relu':
      return unary('Relu');
    case 'relu6':
      return s.op('Clip', [x.name, s.scalar(0), s.scalar(6)], x.shape);
    case 'elu':
      return unary('Elu', { alpha: { float: 1 } });
    case 'selu':
      return unary('Selu');
    case 'sigmoid':
      return unary('Sigmoid');
    case 'hardsigmoid':
      return unary('HardSigmoid', { alpha: { float: 0.2 }, beta: { float: 0.5 } });
    case 'tanh':
      return unary('Tanh');
    case 'softplus':
      return unary('Softplus');
    case 'softsign':
      return unary('Softsign');
    case 'swish':
    case 'silu':
      return s.op('Mul', [x.name, unary('Sigmoid').name], x.shape);
    case 'softmax':
      return unary('Softmax', { axis: onnxAxis(s, x.shape.length, -1) });
    case 'logsoftmax':
      return unary('LogSoftmax', { axis: onnxAxis(s, x.shape.length, -1) });
    default:
      return s.fail(`has activation ${JSON.stringify(activation)}, which convscope cannot convert`);
  }
}

function bias(s: LayerScope, cfg: Config, units: number): string[] {
  return cfg.use_bias === false ? [] : [s.param('bias', s.weight('bias', [units]))];
}

/** A 2-D convolution of `x` by ONNX weights [out, in/group, kh, kw]. */
function conv(
  s: LayerScope,
  cfg: Config,
  x: Tensor,
  weights: string,
  kernel: number[],
  out: number,
  group: number,
  extra: string[] = [],
  step = 'Conv',
): Tensor {
  const [h, w] = image(s, x, cfg);
  const strides = pair(s, cfg.strides ?? 1, 'strides');
  const dilations = pair(s, cfg.dilation_rate ?? 1, 'dilation_rate');
  const win = slide(s, [h, w], kernel, strides, dilations, cfg.padding ?? 'valid');
  return s.op('Conv', [x.name, weights, ...extra], [...win.out, out], { kernel_shape: kernel, strides, dilations, pads: win.pads, group }, step);
}

const Conv2D: Convert = (s, cfg, [x]) => {
  const [, , c] = image(s, x, cfg);
  const kernel = pair(s, cfg.kernel_size, 'kernel_size');
  const filters = Number(cfg.filters);
  if (Number(cfg.groups ?? 1) !== 1) s.fail(`has groups: ${cfg.groups}; convscope converts ungrouped convolutions, as TF.js runs`);
  const k = s.weight('kernel', [...kernel, c, filters]);
  const y = conv(s, cfg, x, s.param('kernel', permute(k, [3, 2, 0, 1])), kernel, filters, 1, bias(s, cfg, filters));
  return activate(s, y, cfg.activation);
};

/** Depthwise: one group per input channel; TF.js's output channel c·m + i is ONNX's too. */
function depthwise(s: LayerScope, cfg: Config, x: Tensor, withBias: boolean): Tensor {
  // tfjs-layers' DepthwiseConv2D runs undilated whatever its config says (Keras dilates): which one trained the weights is unknowable.
  if (s.className === 'DepthwiseConv2D' && pair(s, cfg.dilation_rate ?? 1, 'dilation_rate').some((d) => d !== 1)) {
    s.fail(
      `has dilation_rate ${JSON.stringify(cfg.dilation_rate)}, which TF.js ignores and Keras applies: convscope cannot tell which the weights were trained for`,
    );
  }
  const [, , c] = image(s, x, cfg);
  const kernel = pair(s, cfg.kernel_size, 'kernel_size');
  const multiplier = Number(cfg.depth_multiplier ?? 1);
  const k = permute(s.weight('depthwise_kernel', [...kernel, c, multiplier]), [2, 3, 0, 1]);
  const weights = s.param('depthwise_kernel', { shape: [c * multiplier, 1, ...kernel], values: k.values });
  return conv(s, cfg, x, weights, kernel, c * multiplier, c, withBias ? bias(s, cfg, c * multiplier) : [], 'depthwise');
}

const DepthwiseConv2D: Convert = (s, cfg, [x]) => activate(s, depthwise(s, cfg, x, true), cfg.activation);

const SeparableConv2D: Convert = (s, cfg, [x]) => {
  const d = depthwise(s, cfg, x, false);
  const filters = Number(cfg.filters);
  const k = s.weight('pointwise_kernel', [1, 1, d.shape[2], filters]);
  const weights = s.param('pointwise_kernel', permute(k, [3, 2, 0, 1]));
  const y = s.op('Conv', [d.name, weights, ...bias(s, cfg, filters)], [d.shape[0], d.shape[1], filters], { kernel_shape: [1, 1] }, 'pointwise');
  return activate(s, y, cfg.activation);
};

const Dense: Convert = (s, cfg, [x]) => {
  const units = Number(cfg.units);
  const inputs = x.shape[x.shape.length - 1];
  const k = s.weight('kernel', [inputs, units]);
  let y: Tensor;
  if (x.shape.length === 1) {
    y = s.op('Gemm', [x.name, s.param('kernel', k), ...bias(s, cfg, units)], [units]);
  } else if (x.shape.length === 3) {
    // On an image, Dense acts on the channels of each position: a 1×1 convolution.
    const weights = s.param('kernel', { shape: [units, inputs, 1, 1], values: permute(k, [1, 0]).values });
    y = s.op('Conv', [x.name, weights, ...bias(s, cfg, units)], [x.shape[0], x.shape[1], units], { kernel_shape: [1, 1] });
  } else {
    return s.fail(`on an input of shape [${x.shape}]: convscope converts Dense on features [F] and on images [H, W, C]`);
  }
  return activate(s, y, cfg.activation);
};

const BatchNormalization: Convert = (s, cfg, [x]) => {
  const rank = x.shape.length;
  const axis = Array.isArray(cfg.axis) && cfg.axis.length === 1 ? cfg.axis[0] : (cfg.axis ?? -1);
  if (onnxAxis(s, rank, axis) !== onnxAxis(s, rank, -1)) s.fail(`normalises axis ${JSON.stringify(cfg.axis)}; convscope converts the channel axis (-1)`);
  const c = x.shape[rank - 1];
  const ones = { shape: [c], values: new Float32Array(c).fill(1) };
  const zeros = { shape: [c], values: new Float32Array(c) };
  const gamma = cfg.scale === false ? ones : s.weight('gamma', [c]);
  const beta = cfg.center === false ? zeros : s.weight('beta', [c]);
  const mean = s.weight('moving_mean', [c]);
  const variance = s.weight('moving_variance', [c]);
  const epsilon = Number(cfg.epsilon ?? 1e-3);
  if (rank === 3) {
    const params = [s.param('gamma', gamma), s.param('beta', beta), s.param('moving_mean', mean), s.param('moving_variance', variance)];
    return s.op('BatchNormalization', [x.name, ...params], x.shape, { epsilon: { float: epsilon } });
  }
  // On features: the same affine map, x·a + b, as two nodes.
  const a = gamma.values.map((g, i) => g / Math.sqrt(variance.values[i] + epsilon));
  const b = beta.values.map((v, i) => v - mean.values[i] * a[i]);
  const scaled = s.op('Mul', [x.name, s.param('scale', { shape: [c], values: a })], x.shape);
  return s.op('Add', [scaled.name, s.param('shift', { shape: [c], values: b })], x.shape);
};

function pool(op: 'MaxPool' | 'AveragePool'): Convert {
  return (s, cfg, [x]) => {
    const [h, w, c] = image(s, x, cfg);
    const kernel = pair(s, cfg.pool_size ?? 2, 'pool_size');
    const strides = pair(s, cfg.strides ?? kernel, 'strides');
    const win = slide(s, [h, w], kernel, strides, [1, 1], cfg.padding ?? 'valid');
    // AveragePool's count_include_pad 0 is TensorFlow's: a window averages its pixels inside the image.
    return s.op(op, [x.name], [...win.out, c], { kernel_shape: kernel, strides, pads: win.pads });
  };
}

function globalPool(op: 'GlobalAveragePool' | 'MaxPool'): Convert {
  return (s, cfg, [x]) => {
    const [h, w, c] = image(s, x, cfg);
    // MaxPool over the whole map: the compiler unpools it like any max-pool.
    const pooled = s.op(op, [x.name], [1, 1, c], op === 'MaxPool' ? { kernel_shape: [h, w] } : {});
    return s.op('Flatten', [pooled.name], [c]);
  };
}

const Flatten: Convert = (s, cfg, [x]) => {
  if (x.shape.length === 3) image(s, x, cfg);
  return s.op('Flatten', [kerasOrder(s, x)], [product(x.shape)]);
};

const Reshape: Convert = (s, cfg, [x]) => {
  const target = cfg.target_shape;
  if (!Array.isArray(target) || ![1, 3].includes(target.length) || target.some((d) => !Number.isInteger(d) || (d < 1 && d !== -1))) {
    return s.fail(`has target_shape ${JSON.stringify(target)}; convscope converts reshapes to [F] or [H, W, C]`);
  }
  const size = product(x.shape);
  const known = product(target.filter((d) => d !== -1));
  const shape = target.map((d) => (d === -1 ? size / known : d));
  if (product(shape) !== size || target.filter((d) => d === -1).length > 1) s.fail(`cannot reshape [${x.shape}] to [${target}]`);
  const data = kerasOrder(s, x);
  if (shape.length === 1) return s.op('Reshape', [data, s.ints('shape', [0, ...shape])], shape);
  const [h, w, c] = shape;
  if (!reorders([h, w, c], [2, 0, 1])) return s.op('Reshape', [data, s.ints('shape', [0, c, h, w])], shape);
  const nhwc = s.op('Reshape', [data, s.ints('shape', [0, h, w, c])], shape);
  return s.op('Transpose', [nhwc.name], shape, { perm: [0, 3, 1, 2] });
};

/** Same-rank inputs broadcast against each other (ONNX's rules hold in either layout). */
function broadcastShape(s: LayerScope, inputs: Tensor[]): number[] {
  const rank = inputs[0].shape.length;
  if (inputs.some((t) => t.shape.length !== rank)) s.fail(`merges inputs of different ranks: ${inputs.map((t) => `[${t.shape}]`).join(', ')}`);
  return inputs[0].shape.map((_, a) => {
    const dims = new Set(inputs.map((t) => t.shape[a]).filter((d) => d !== 1));
    if (dims.size > 1) s.fail(`merges inputs of shapes ${inputs.map((t) => `[${t.shape}]`).join(', ')}`);
    return dims.size ? [...dims][0] : 1;
  });
}

/** Add, Multiply, Maximum, Minimum of two or more inputs: a chain of binary ops, or one n-ary op. */
function merge(op: string, variadic: boolean): Convert {
  return (s, cfg, inputs) => {
    const shape = broadcastShape(s, inputs);
    if (variadic && inputs.length > 2)
      return s.op(
        op === 'Add' ? 'Sum' : op,
        inputs.map((t) => t.name),
        shape,
      );
    return inputs.slice(1).reduce((acc, t) => s.op(op, [acc.name, t.name], shape), inputs[0]);
  };
}

const Average: Convert = (s, cfg, inputs) => {
  const sum = merge('Add', true)(s, cfg, inputs);
  return s.op('Mul', [sum.name, s.scalar(1 / inputs.length)], sum.shape);
};

const Concatenate: Convert = (s, cfg, inputs) => {
  const rank = inputs[0].shape.length;
  if (inputs.some((t) => t.shape.length !== rank)) s.fail(`concatenates inputs of different ranks`);
  const axis = onnxAxis(s, rank, cfg.axis ?? -1);
  const keras = kerasAxis(s, rank, cfg.axis ?? -1) - 1;
  const shape = inputs[0].shape.map((d, a) => (a === keras ? inputs.reduce((sum, t) => sum + t.shape[a], 0) : d));
  if (inputs.some((t) => t.shape.some((d, a) => a !== keras && d !== shape[a])))
    s.fail(`concatenates inputs of shapes ${inputs.map((t) => `[${t.shape}]`).join(', ')}`);
  return s.op(
    'Concat',
    inputs.map((t) => t.name),
    shape,
    { axis },
  );
};

/** [[top, bottom], [left, right]] from Keras's int, [rows, cols] or nested forms. */
function edges(s: LayerScope, value: unknown, what: string): [number, number, number, number] {
  if (Array.isArray(value) && value.every(Array.isArray)) {
    const [[top, bottom], [left, right]] = [pair(s, value[0], what, 0), pair(s, value[1], what, 0)];
    return [top, bottom, left, right];
  }
  const [rows, cols] = pair(s, value, what, 0);
  return [rows, rows, cols, cols];
}

const ZeroPadding2D: Convert = (s, cfg, [x]) => {
  const [h, w, c] = image(s, x, cfg);
  const [top, bottom, left, right] = edges(s, cfg.padding ?? 1, 'padding');
  return s.op('Pad', [x.name, s.ints('pads', [0, 0, top, left, 0, 0, bottom, right])], [h + top + bottom, w + left + right, c], { mode: 'constant' });
};

const Cropping2D: Convert = (s, cfg, [x]) => {
  const [h, w, c] = image(s, x, cfg);
  const [top, bottom, left, right] = edges(s, cfg.cropping ?? 0, 'cropping');
  if (top + bottom >= h || left + right >= w) s.fail(`crops its whole ${h}×${w} input`);
  const inputs = [x.name, s.ints('starts', [top, left]), s.ints('ends', [h - bottom, w - right]), s.ints('axes', [2, 3])];
  return s.op('Slice', inputs, [h - top - bottom, w - left - right, c]);
};

const Rescaling: Convert = (s, cfg, [x]) => {
  const scale = cfg.scale ?? 1;
  const offset = cfg.offset ?? 0;
  if (typeof scale !== 'number' || typeof offset !== 'number') return s.fail('has a per-channel scale or offset; convscope converts single numbers');
  const scaled = scale === 1 ? x : s.op('Mul', [x.name, s.scalar(scale)], x.shape);
  return offset === 0 ? scaled : s.op('Add', [scaled.name, s.scalar(offset)], x.shape);
};

const ReLU: Convert = (s, cfg, [x]) => {
  // Keras's negative_slope and threshold are not TF.js's: refused rather than computed otherwise.
  if (Number(cfg.negative_slope ?? 0) !== 0 || Number(cfg.threshold ?? 0) !== 0) s.fail("has a negative_slope or threshold, which TF.js's ReLU does not have");
  const max = cfg.max_value ?? null;
  if (max === null) return s.op('Relu', [x.name], x.shape);
  return s.op('Clip', [x.name, s.scalar(0), s.scalar(Number(max))], x.shape);
};

const PReLU: Convert = (s, cfg, [x]) => {
  const shared = new Set(Array.isArray(cfg.shared_axes) ? cfg.shared_axes : cfg.shared_axes == null ? [] : [cfg.shared_axes]);
  const shape = x.shape.map((d, a) => (shared.has(a + 1) ? 1 : d));
  const alpha = s.weight('alpha', shape);
  return s.op('PRelu', [x.name, s.param('alpha', shape.length === 3 ? permute(alpha, [2, 0, 1]) : alpha)], x.shape);
};

const dropout: Convert = (s, cfg, [x]) => s.op('Dropout', [x.name], x.shape);

/** Converters by Keras class name. */
export const LAYERS: Record<string, Convert> = {
  Conv2D,
  DepthwiseConv2D,
  SeparableConv2D,
  Dense,
  BatchNormalization,
  MaxPooling2D: pool('MaxPool'),
  AveragePooling2D: pool('AveragePool'),
  GlobalAveragePooling2D: globalPool('GlobalAveragePool'),
  GlobalMaxPooling2D: globalPool('MaxPool'),
  Flatten,
  Reshape,
  ZeroPadding2D,
  Cropping2D,
  Rescaling,
  Activation: (s, cfg, [x]) => activate(s, x, cfg.activation),
  ReLU,
  LeakyReLU: (s, cfg, [x]) => s.op('LeakyRelu', [x.name], x.shape, { alpha: { float: Number(cfg.alpha ?? 0.3) } }),
  ELU: (s, cfg, [x]) => s.op('Elu', [x.name], x.shape, { alpha: { float: Number(cfg.alpha ?? 1) } }),
  PReLU,
  Softmax: (s, cfg, [x]) => s.op('Softmax', [x.name], x.shape, { axis: onnxAxis(s, x.shape.length, cfg.axis ?? -1) }),
  Add: merge('Add', true),
  Multiply: merge('Mul', false),
  Maximum: merge('Max', true),
  Minimum: merge('Min', true),
  Average,
  Concatenate,
  // Inactive at inference.
  Dropout: dropout,
  GaussianDropout: dropout,
  GaussianNoise: dropout,
  AlphaDropout: dropout,
};

/** Layers of two or more inputs. */
export const MERGES = new Set(['Add', 'Multiply', 'Maximum', 'Minimum', 'Average', 'Concatenate']);
