/**
 * Builds the TensorFlow.js fixtures in test/fixtures/tfjs/ (see its README.md) with TensorFlow.js
 * itself (@tensorflow/tfjs-layers on the pure-JS CPU backend; dev dependencies): small layers
 * models covering every layer type src/tfjs/ converts, a VGG-style net trained for a few steps (12 of 8 images),
 * a model saved as tensorflowjs_converter saves Keras models (quantized weights), and two that
 * convscope cannot serve whole. Each is saved as TF.js saves it (model.json + weight shards),
 * loaded back from those files, and run by TF.js on a fixed input: every layer's output, and
 * projections by TF.js's own autodiff (tf.grad). SALIENCY is the plain gradient; DECONVNET and
 * GUIDED_BACKPROP the same gradient with the ReLU's swapped for the method's rule.
 *
 *   npm run build && node scripts/make_tfjs_fixtures.mjs      # ~5 min of CPU, most of it training the VGG
 *
 * Deterministic: seeded weights and data, no shuffling; two runs write identical files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { encodeNpy } from '../dist/src/cache/npy.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'test', 'fixtures', 'tfjs');
const L = tfl.layers;

await tf.setBackend('cpu');

// ---------------------------------------------------------------- seeded numbers

function generator(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  return { uniform, normal };
}

/** Weights by role: He-normal kernels, small non-zero biases, BatchNorm statistics far from the identity. */
function seedWeights(model, seed) {
  const rng = generator(seed);
  const fill = (w) => {
    const name = w.originalName ?? w.name;
    const shape = w.shape;
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    const role = name.split('/').pop();
    const fanIn = shape.length > 1 ? shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
    for (let i = 0; i < n; i++) {
      if (role === 'bias' || role === 'beta') values[i] = (rng.uniform() - 0.5) * 0.2;
      else if (role === 'gamma') values[i] = 0.5 + rng.uniform();
      else if (role === 'moving_mean') values[i] = (rng.uniform() - 0.5) * 0.4;
      else if (role === 'moving_variance') values[i] = 0.5 + 1.5 * rng.uniform();
      else if (role === 'alpha') values[i] = 0.05 + 0.3 * rng.uniform();
      else if (role === 'depthwise_kernel') values[i] = rng.normal() * Math.sqrt(2 / (shape[0] * shape[1]));
      else values[i] = rng.normal() * Math.sqrt(2 / fanIn);
    }
    return tf.tensor(values, shape);
  };
  model.setWeights(model.weights.map(fill));
}

/** An input image in [0, 1], on the 8-bit grid (a PNG of it preprocesses to the same floats). */
function randomImage(shape, seed) {
  const rng = generator(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => Math.round(rng.uniform() * 255) / 255),
    [1, ...shape],
  );
}

// ---------------------------------------------------------------- the models

/** VGG-style (VGG11 depth, widths ÷ 8), 64×64 RGB, trained a few steps on 10 classes of gratings. */
function vgg() {
  const m = tfl.sequential({ name: 'vgg' });
  let first = true;
  const conv = (name, filters) => {
    m.add(L.conv2d({ name, filters, kernelSize: 3, padding: 'same', activation: 'relu', ...(first ? { inputShape: [64, 64, 3] } : {}) }));
    first = false;
  };
  [
    [8, 8],
    [16, 16],
    [32, 32],
    [64, 64],
  ].forEach(([a, b], i) => {
    conv(`conv${i + 1}_1`, a);
    conv(`conv${i + 1}_2`, b);
    m.add(L.maxPooling2d({ name: `pool${i + 1}`, poolSize: 2 }));
  });
  m.add(L.flatten({ name: 'flatten' }));
  m.add(L.dense({ name: 'fc1', units: 64, activation: 'relu' }));
  m.add(L.dropout({ name: 'drop', rate: 0.25, seed: 7 }));
  m.add(L.dense({ name: 'fc2', units: 10, activation: 'softmax' }));
  return m;
}

/** Class k: a grating at k·18°, its colour and frequency by class, with noise. */
function gratings(count, seed) {
  const rng = generator(seed);
  const size = 64;
  const xs = new Float32Array(count * size * size * 3);
  const ys = new Float32Array(count * 10);
  for (let i = 0; i < count; i++) {
    const k = i % 10;
    const angle = (k * Math.PI) / 10;
    const freq = 0.08 + 0.04 * (k % 3);
    const phase = rng.uniform() * 2 * Math.PI;
    const tint = [0.5 + 0.5 * Math.cos(k), 0.5 + 0.5 * Math.sin(k), 0.5];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const wave = Math.sin(2 * Math.PI * freq * (x * Math.cos(angle) + y * Math.sin(angle)) + phase);
        for (let c = 0; c < 3; c++) {
          const v = 0.5 + 0.4 * wave * tint[c] + 0.08 * rng.normal();
          xs[((i * size + y) * size + x) * 3 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255) / 255;
        }
      }
    }
    ys[i * 10 + k] = 1;
  }
  return { xs: tf.tensor(xs, [count, size, size, 3]), ys: tf.tensor(ys, [count, 10]) };
}

/** Every layer type of a Sequential model, on an odd, non-square input. */
function sequentialLayers() {
  const m = tfl.sequential({ name: 'sequential_layers' });
  m.add(L.inputLayer({ name: 'image', batchInputShape: [null, 23, 21, 3] }));
  m.add(L.rescaling({ name: 'rescale', scale: 2, offset: -1 }));
  m.add(
    L.zeroPadding2d({
      name: 'pad',
      padding: [
        [1, 2],
        [2, 1],
      ],
    }),
  );
  m.add(L.conv2d({ name: 'conv1', filters: 8, kernelSize: [3, 2], strides: [2, 1], padding: 'valid' }));
  m.add(L.batchNormalization({ name: 'bn1', epsilon: 1e-3 }));
  m.add(L.reLU({ name: 'relu1', maxValue: 4 }));
  m.add(L.depthwiseConv2d({ name: 'dw', kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2, activation: 'relu6' }));
  m.add(L.separableConv2d({ name: 'sep', filters: 12, kernelSize: 3, padding: 'same', activation: 'relu' }));
  m.add(L.averagePooling2d({ name: 'avg', poolSize: 2, strides: 2, padding: 'same' }));
  m.add(L.conv2d({ name: 'conv2', filters: 16, kernelSize: 3, padding: 'same', useBias: false, activation: 'elu' }));
  m.add(L.maxPooling2d({ name: 'pool', poolSize: 2, strides: 1, padding: 'same' }));
  m.add(L.activation({ name: 'swish', activation: 'swish' }));
  m.add(L.conv2d({ name: 'conv3', filters: 10, kernelSize: 1, activation: 'tanh' }));
  m.add(
    L.cropping2D({
      name: 'crop',
      cropping: [
        [1, 0],
        [0, 2],
      ],
    }),
  );
  m.add(L.globalMaxPooling2d({ name: 'gmp' }));
  m.add(L.dense({ name: 'fc1', units: 16, activation: 'sigmoid' }));
  m.add(L.batchNormalization({ name: 'bn2' }));
  m.add(L.dropout({ name: 'drop', rate: 0.5 }));
  m.add(L.dense({ name: 'fc2', units: 7, activation: 'softmax' }));
  return m;
}

/** Every layer type of a functional model: residual Add, branches, squeeze-excitation, reshapes. */
function functionalLayers() {
  const img = tfl.input({ name: 'img', shape: [16, 16, 3] });
  const c1 = L.conv2d({ name: 'c1', filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(img);
  const c2 = L.conv2d({ name: 'res_conv', filters: 8, kernelSize: 3, padding: 'same' }).apply(c1);
  const bn = L.batchNormalization({ name: 'res_bn' }).apply(c2);
  const add = L.add({ name: 'res_add' }).apply([c1, bn]);
  const lr = L.leakyReLU({ name: 'lrelu', alpha: 0.2 }).apply(add);
  const p1 = L.maxPooling2d({ name: 'pool', poolSize: 2 }).apply(lr);
  const br1 = L.conv2d({ name: 'branch1', filters: 4, kernelSize: 1, activation: 'relu' }).apply(p1);
  const br2 = L.conv2d({ name: 'branch2', filters: 4, kernelSize: 3, padding: 'same', activation: 'hardSigmoid' }).apply(p1);
  const cat = L.concatenate({ name: 'cat' }).apply([br1, br2]);
  const squeeze = L.globalAveragePooling2d({ name: 'se_pool' }).apply(cat);
  const se1 = L.dense({ name: 'se_fc1', units: 4, activation: 'relu' }).apply(squeeze);
  const se2 = L.dense({ name: 'se_fc2', units: 8, activation: 'sigmoid' }).apply(se1);
  const gate = L.reshape({ name: 'se_reshape', targetShape: [1, 1, 8] }).apply(se2);
  const excite = L.multiply({ name: 'se_mul' }).apply([cat, gate]);
  const elu = L.elu({ name: 'elu' }).apply(excite);
  const reshaped = L.reshape({ name: 'reshape', targetShape: [4, 16, 8] }).apply(elu);
  const prelu = L.prelu({ name: 'prelu', sharedAxes: [1, 2] }).apply(reshaped);
  const dense = L.dense({ name: 'pixel_dense', units: 6, activation: 'softplus' }).apply(prelu);
  const sm = L.softmax({ name: 'softmax', axis: -1 }).apply(dense);
  const flat = L.flatten({ name: 'flatten' }).apply(sm);
  const gap = L.globalAveragePooling2d({ name: 'gap' }).apply(sm);
  const gmp = L.globalMaxPooling2d({ name: 'gmp' }).apply(sm);
  const avg = L.average({ name: 'avg' }).apply([gap, gmp]);
  const sum = L.add({ name: 'sum3' }).apply([gap, gmp, avg]);
  const all = L.concatenate({ name: 'cat2' }).apply([flat, avg, sum]);
  const logits = L.dense({ name: 'logits', units: 5 }).apply(all);
  const out = L.activation({ name: 'out', activation: 'linear' }).apply(logits);
  return tfl.model({ name: 'functional_layers', inputs: img, outputs: out });
}

/**
 * What TF.js has no correct gradient for, checked forward only: dilated convolutions (its conv
 * gradients assert dilation 1), average pools over windows cut by the padding (its avgPoolGrad
 * divides by the whole window at the border, its forward by the pixels inside); and the noise
 * layers, inactive at inference.
 */
function forwardOnly() {
  const m = tfl.sequential({ name: 'forward_only' });
  m.add(L.conv2d({ name: 'conv', inputShape: [15, 13, 3], filters: 6, kernelSize: 3, padding: 'same', dilationRate: [2, 1], activation: 'relu' }));
  m.add(L.averagePooling2d({ name: 'avg', poolSize: 3, strides: 2, padding: 'same' }));
  m.add(L.gaussianNoise({ name: 'noise', stddev: 0.5 }));
  m.add(L.separableConv2d({ name: 'sep', filters: 8, kernelSize: [2, 3], padding: 'same', dilationRate: 2, activation: 'relu' }));
  m.add(L.gaussianDropout({ name: 'gdrop', rate: 0.3 }));
  m.add(L.globalAveragePooling2d({ name: 'gap' }));
  m.add(L.alphaDropout({ name: 'adrop', rate: 0.3 }));
  m.add(L.dense({ name: 'fc', units: 3, activation: 'logSoftmax' }));
  return m;
}

/** Small, for the Keras-converter layout and quantized weights. */
function quantized() {
  const m = tfl.sequential({ name: 'quantized' });
  m.add(L.conv2d({ name: 'qconv1', inputShape: [12, 12, 3], filters: 6, kernelSize: 3, activation: 'relu' }));
  m.add(L.conv2d({ name: 'qconv2', filters: 6, kernelSize: 3, strides: 2, activation: 'relu' }));
  m.add(L.flatten({ name: 'qflat' }));
  m.add(L.dense({ name: 'qdense', units: 4 }));
  return m;
}

/** Converts, but a projection through the Selu (or softsign, Maximum, Minimum) has no rule: UNSUPPORTED_MODEL. */
function unsupportedOp() {
  const img = tfl.input({ name: 'img', shape: [10, 10, 3] });
  const a = L.conv2d({ name: 'conv_a', filters: 4, kernelSize: 3, activation: 'relu' }).apply(img);
  const s = L.activation({ name: 'selu', activation: 'selu' }).apply(a);
  const b = L.conv2d({ name: 'conv_b', filters: 4, kernelSize: 3, activation: 'relu' }).apply(s);
  const c = L.conv2d({ name: 'conv_c', filters: 4, kernelSize: 1, activation: 'softsign' }).apply(b);
  const hi = L.maximum({ name: 'max' }).apply([b, c]);
  const lo = L.minimum({ name: 'min' }).apply([b, c]);
  const both = L.concatenate({ name: 'cat' }).apply([hi, lo]);
  const pooled = L.globalAveragePooling2d({ name: 'gap' }).apply(both);
  const out = L.dense({ name: 'fc', units: 3 }).apply(pooled);
  return tfl.model({ name: 'unsupported_op', inputs: img, outputs: out });
}

/** A layer convscope does not convert (UpSampling2D): the model is listed in modelErrors. */
function unconvertible() {
  const m = tfl.sequential({ name: 'unconvertible' });
  m.add(L.conv2d({ name: 'conv', inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu' }));
  m.add(L.upSampling2d({ name: 'upsample', size: [2, 2] }));
  m.add(L.conv2d({ name: 'conv2', filters: 2, kernelSize: 3 }));
  return m;
}

// ---------------------------------------------------------------- saving as TF.js saves

async function artifactsOf(model) {
  let artifacts;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
    }),
  );
  const data = Array.isArray(artifacts.weightData) ? Buffer.concat(artifacts.weightData.map((b) => Buffer.from(b))) : Buffer.from(artifacts.weightData);
  return { ...artifacts, weightData: data };
}

function float16Bits(value) {
  const f = new Float32Array([value]);
  const bits = new Uint32Array(f.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent <= 0) return sign | Math.round((mantissa | 0x800000) / 2 ** (14 - exponent));
  if (exponent >= 31) return sign | 0x7c00;
  const rounded = Math.round(mantissa / 2 ** 13);
  return rounded === 1024 ? sign | ((exponent + 1) << 10) : sign | (exponent << 10) | rounded;
}

/** Re-encodes float32 weights as tensorflowjs_converter --quantize_* does (by layer: uint8, uint16 or float16). */
function quantize(specs, data, dtypeOf) {
  const parts = [];
  let offset = 0;
  const out = specs.map((spec) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + n * 4));
    offset += n * 4;
    const dtype = dtypeOf(spec.name);
    if (dtype === 'float16') {
      parts.push(Buffer.from(Uint16Array.from(values, float16Bits).buffer));
      return { ...spec, quantization: { dtype } };
    }
    const levels = dtype === 'uint8' ? 255 : 65535;
    const min = Math.min(...values);
    const scale = (Math.max(...values) - min) / levels || 1;
    const q = Array.from(values, (v) => Math.round((v - min) / scale));
    parts.push(Buffer.from((dtype === 'uint8' ? Uint8Array.from(q) : Uint16Array.from(q)).buffer));
    return { ...spec, quantization: { dtype, min, scale } };
  });
  return { specs: out, data: Buffer.concat(parts) };
}

/**
 * Writes <dir>/model.json and the weight shards (group1-shard<i>of<n>.bin of at most `shardBytes`,
 * as tensorflowjs_converter names them, or TF.js's single weights.bin) and returns TF.js's own
 * reading of those files.
 */
async function save(model, dir, { shardBytes, keras, quantizeAs } = {}) {
  const artifacts = await artifactsOf(model);
  let { weightSpecs: specs, weightData: data } = artifacts;
  if (quantizeAs) ({ specs, data } = quantize(specs, data, quantizeAs));
  const shards = [];
  for (let start = 0; start < data.length; start += shardBytes ?? data.length) shards.push(data.subarray(start, start + (shardBytes ?? data.length)));
  const paths = shards.length === 1 && !shardBytes ? ['weights.bin'] : shards.map((_, i) => `group1-shard${i + 1}of${shards.length}.bin`);
  let topology = artifacts.modelTopology;
  if (keras) {
    // tensorflowjs_converter's layout for a Keras 2 .h5: the config under model_config, an explicit InputLayer.
    const { layers } = topology.config;
    const input = {
      class_name: 'InputLayer',
      config: { batch_input_shape: layers[0].config.batch_input_shape, dtype: 'float32', sparse: false, name: `${layers[0].config.name}_input` },
    };
    delete layers[0].config.batch_input_shape;
    topology = { keras_version: '2.15.0', backend: 'tensorflow', model_config: { ...topology, config: { ...topology.config, layers: [input, ...layers] } } };
  }
  const modelJson = {
    format: 'layers-model',
    generatedBy: keras ? 'keras v2.15.0' : artifacts.generatedBy,
    convertedBy: keras ? 'TensorFlow.js Converter v4.22.0' : null,
    modelTopology: topology,
    weightsManifest: [{ paths, weights: specs }],
  };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJson));
  shards.forEach((shard, i) => fs.writeFileSync(path.join(dir, paths[i]), shard));
  return loadFromFiles(dir);
}

/** TF.js loading a model folder (what tf.loadLayersModel('file://…') does in tfjs-node). */
async function loadFromFiles(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  const weightData = new Uint8Array(Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))))).buffer;
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
}

// ---------------------------------------------------------------- references

/** The ReLU family's backward per method, in TF.js's autodiff; restored after `fn`. */
function withRules(method, caps, fn) {
  const kernels = ['Relu', ...caps];
  const original = kernels.map((k) => tf.getGradient(k));
  if (method !== 'SALIENCY') {
    tf.registerGradient({
      kernelName: 'Relu',
      inputsToSave: ['x'],
      gradFunc: (dy, [x]) => ({ x: () => (method === 'DECONVNET' ? tf.relu(dy) : tf.mul(tf.relu(dy), tf.step(x))) }),
    });
    // A capped ReLU (relu6 = minimum(6, relu(x)); ReLU(max_value) = clipByValue(relu(x), 0, max)):
    // for DECONVNET the cap passes the signal as it is, so that the whole is relu(g).
    if (method === 'DECONVNET') {
      if (caps.includes('Minimum'))
        tf.registerGradient({ kernelName: 'Minimum', inputsToSave: ['a', 'b'], gradFunc: (dy, [a]) => ({ a: () => tf.zerosLike(a), b: () => dy }) });
      if (caps.includes('ClipByValue')) tf.registerGradient({ kernelName: 'ClipByValue', inputsToSave: ['x'], gradFunc: (dy) => ({ x: () => dy }) });
    }
  }
  try {
    return fn();
  } finally {
    original.forEach((g) => tf.registerGradient(g));
  }
}

/** A TF.js activation as convscope lays it out: [C, H, W] for images, [F] for features. */
function channelsFirst(t) {
  return tf.tidy(() => (t.rank === 4 ? tf.reshape(tf.transpose(t, [0, 3, 1, 2]), [t.shape[3], t.shape[1], t.shape[2]]) : tf.reshape(t, t.shape.slice(1))));
}

function writeNpy(relative, tensor) {
  const file = path.join(OUT, 'reference', relative);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, encodeNpy(tensor.dataSync(), tensor.shape));
  return relative;
}

/** The seed of a case: the unit (image: the channel's first maximum in raster order) or the whole map. */
function seedOf(act, channel, seed) {
  const values = act.dataSync();
  if (act.rank === 2) {
    const mask = new Float32Array(values.length);
    mask[channel] = values[channel];
    return { mask: tf.tensor(mask, act.shape), seedValue: values[channel], seedPosition: null, ties: 1 };
  }
  const [, H, W, C] = act.shape;
  let best = -Infinity;
  let at = 0;
  let ties = 0;
  for (let p = 0; p < H * W; p++) {
    const v = values[p * C + channel];
    if (v > best) [best, at, ties] = [v, p, 1];
    else if (v === best) ties++;
  }
  const mask = new Float32Array(values.length);
  if (seed === 'FULL_MAP') for (let p = 0; p < H * W; p++) mask[p * C + channel] = values[p * C + channel];
  else mask[at * C + channel] = best;
  return { mask: tf.tensor(mask, act.shape), seedValue: best, seedPosition: { y: Math.floor(at / W), x: at % W }, ties };
}

/** A channel with a clear, positive maximum (or a dense unit well away from 0), the `k`-th such. */
function pickChannel(act, k) {
  const values = act.dataSync();
  const C = act.shape[act.rank - 1];
  const good = [];
  for (let c = 0; c < C; c++) {
    const map = act.rank === 2 ? [values[c]] : Array.from({ length: values.length / C }, (_, p) => values[p * C + c]);
    const sorted = [...map].sort((a, b) => b - a);
    const clear = sorted.length === 1 ? Math.abs(sorted[0]) > 1e-3 : sorted[0] > 1e-3 && sorted[0] - sorted[1] > 1e-4 * sorted[0];
    if (clear) good.push(c);
  }
  if (!good.length) throw new Error(`no channel with a clear maximum in [${act.shape}]`);
  return good[(k * 5) % good.length];
}

const manifest = { tfjs: tfl.version_layers, models: {}, cases: [] };

/**
 * Runs `model` (as TF.js read it back from its files) on its input: every layer's output (where
 * small enough to keep) and the projections of `targets` by each method.
 */
async function reference(
  name,
  model,
  input,
  { targets = [], methods = ['DECONVNET', 'GUIDED_BACKPROP', 'SALIENCY'], fullMap = [], caps = [], keepValues = 8192 } = {},
) {
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const all = tfl.model({ inputs: model.inputs, outputs: layers.map((l) => l.output) });
  const outputs = all.predict(input);
  const list = Array.isArray(outputs) ? outputs : [outputs];
  const entry = {
    input: writeNpy(`inputs/${name}.npy`, channelsFirst(input)),
    inputShape: channelsFirst(input).shape,
    output: layers[layers.length - 1].name,
    layers: {},
    shapes: {},
  };
  layers.forEach((layer, i) => {
    entry.shapes[layer.name] = channelsFirst(list[i]).shape;
    if (list[i].size <= keepValues || i === layers.length - 1) entry.layers[layer.name] = writeNpy(`outputs/${name}/${layer.name}.npy`, channelsFirst(list[i]));
  });
  entry.logits = entry.layers[entry.output];
  manifest.models[name] = entry;

  for (const [k, target] of targets.entries()) {
    const layer = model.getLayer(target);
    const sub = tfl.model({ inputs: model.inputs, outputs: layer.output });
    const act = sub.predict(input);
    const channel = pickChannel(act, k);
    const seeds = ['MAX', ...(fullMap.includes(target) ? ['FULL_MAP'] : [])];
    for (const seed of seeds) {
      const { mask, seedValue, seedPosition, ties } = seedOf(act, channel, seed);
      const byMethod = {};
      for (const method of seed === 'MAX' ? methods : ['DECONVNET']) {
        const grad = withRules(method, caps, () => tf.grad((x) => tf.sum(tf.mul(sub.apply(x), mask)))(input));
        byMethod[method] = grad;
        const id = `${name}-${target}-${channel}-${method}-${seed}`;
        manifest.cases.push({
          id,
          model: name,
          target,
          targetOutput: target,
          targetOp: layer.getClassName(),
          channel,
          method,
          seed,
          position: null,
          lrn: 'IDENTITY',
          expected: writeNpy(`cases/${id}.npy`, channelsFirst(grad)),
          seedValue,
          seedPosition,
          seedTies: ties,
          maxAbs: tf.max(tf.abs(grad)).dataSync()[0],
        });
      }
      // The rules must change the result wherever a ReLU is on the path (or the cases test nothing).
      if (byMethod.DECONVNET && byMethod.SALIENCY && tf.max(tf.abs(tf.sub(byMethod.DECONVNET, byMethod.SALIENCY))).dataSync()[0] === 0) {
        console.warn(`  note: ${name} ${target}: DECONVNET equals SALIENCY`);
      }
    }
  }
}

// ---------------------------------------------------------------- main

const MODELS = path.join(OUT, 'models');
for (const dir of [MODELS, path.join(OUT, 'reference')]) fs.rmSync(dir, { recursive: true, force: true });
const started = Date.now();

{
  const model = sequentialLayers();
  seedWeights(model, 11);
  const loaded = await save(model, path.join(MODELS, 'sequential_layers'));
  await reference('sequential_layers', loaded, randomImage([23, 21, 3], 12), {
    targets: ['relu1', 'dw', 'sep', 'conv2', 'conv3', 'fc1'],
    caps: ['Minimum', 'ClipByValue'],
  });
}
{
  const model = functionalLayers();
  seedWeights(model, 21);
  const loaded = await save(model, path.join(MODELS, 'functional_layers'));
  await reference('functional_layers', loaded, randomImage([16, 16, 3], 22), {
    targets: ['c1', 'lrelu', 'cat', 'se_mul', 'prelu', 'softmax', 'logits'],
    fullMap: ['cat'],
  });
}
{
  const model = forwardOnly();
  seedWeights(model, 61);
  await reference('forward_only', await save(model, path.join(MODELS, 'forward_only')), randomImage([15, 13, 3], 62));
}
{
  const model = quantized();
  seedWeights(model, 31);
  const dtypeOf = (weight) => (weight.startsWith('qconv1/') ? 'uint8' : weight.startsWith('qconv2/') ? 'uint16' : 'float16');
  const loaded = await save(model, path.join(MODELS, 'quantized'), { keras: true, quantizeAs: dtypeOf });
  await reference('quantized', loaded, randomImage([12, 12, 3], 32), { targets: ['qconv2'], methods: ['DECONVNET'] });
}
{
  const model = unsupportedOp();
  seedWeights(model, 41);
  const loaded = await save(model, path.join(MODELS, 'unsupported_op'));
  await reference('unsupported_op', loaded, randomImage([10, 10, 3], 42), { targets: ['conv_a'], methods: ['DECONVNET'] });
}
{
  const model = unconvertible();
  seedWeights(model, 51);
  await save(model, path.join(MODELS, 'unconvertible'));
}

{
  const model = vgg();
  seedWeights(model, 1);
  // Few steps: TF.js's CPU backend takes about a second per image for the kernel gradients of the 64×64 convs.
  const { xs, ys } = gratings(48, 2);
  model.compile({ optimizer: tf.train.adam(3e-3), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  const history = await model.fit(xs, ys, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
  const test = gratings(50, 3);
  const [, accuracy] = model.evaluate(test.xs, test.ys).map((t) => t.dataSync()[0]);
  const loaded = await save(model, path.join(MODELS, 'vgg'), { shardBytes: 128 * 1024 });
  const labels = Array.from({ length: 10 }, (_, k) => `grating ${k * 18}°`);
  fs.writeFileSync(
    path.join(MODELS, 'vgg.json'),
    JSON.stringify(
      { description: 'VGG-style (VGG11 depth, widths ÷ 8), trained a few steps on synthetic gratings (scripts/make_tfjs_fixtures.mjs)', labels },
      null,
      2,
    ) + '\n',
  );
  const input = tf.slice(test.xs, [3, 0, 0, 0], [1, 64, 64, 3]);
  await reference('vgg', loaded, input, { targets: ['conv2_2', 'conv4_2', 'fc1'], fullMap: ['conv4_2'] });
  manifest.models.vgg.training = { steps: 12, loss: history.history.loss.map(Number), heldOutAccuracy: accuracy };
  console.log(`vgg: loss ${history.history.loss.map((l) => l.toFixed(3)).join(' → ')}, held-out accuracy ${accuracy.toFixed(2)}`);
}
fs.writeFileSync(path.join(OUT, 'reference', 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
const bytes = (dir) =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .reduce((sum, e) => sum + (e.isDirectory() ? bytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size), 0);
console.log(
  `${Object.keys(manifest.models).length} models with references, ${manifest.cases.length} cases, ${(bytes(OUT) / 2 ** 20).toFixed(2)} MB, ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
