/**
 * TensorFlow.js layers models (`<name>/model.json` + weight shards) served like ONNX files,
 * against TensorFlow.js itself (test/fixtures/tfjs, made by scripts/make_tfjs_fixtures.mjs):
 * every Keras layer's output on a fixed input, and projections by TF.js's autodiff with the
 * ReLU's backward swapped per method. Tolerance: max |ours − TF.js| ≤ 1e-4 · max |TF.js|.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { decodeNpy } from '../src/cache/npy';
import { compileForward } from '../src/compiler/forward';
import { loadConfig } from '../src/config';
import { project } from '../src/engine/projections';
import { createServices, Services } from '../src/service/services';
import { readLayersModelFiles, Weight } from '../src/tfjs/files';
import { convertLayersModel } from '../src/tfjs/convert';
import { errorCode, FIXTURES, gql, startTestServer } from './helpers';
import { assertMatchesCase, caseRequest, loadManifest, loadNpy, Manifest, relativeError } from './reference';

const TOLERANCE = 1e-4;
const TFJS = path.join(FIXTURES, 'tfjs');
const MODELS = path.join(TFJS, 'models');
const REFERENCE = path.join(TFJS, 'reference');
const manifest = loadManifest(REFERENCE) as Manifest & {
  models: Record<string, { output: string; layers: Record<string, string>; shapes: Record<string, number[]> }>;
};
const served = Object.keys(manifest.models);

describe('TF.js layers models: served like ONNX, equal to TensorFlow.js', () => {
  let s: Services;
  beforeAll(async () => {
    s = await createServices(loadConfig({ MODELS_DIR: MODELS, CACHE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-tfjs-')), LOG_LEVEL: 'silent' }));
  });
  afterAll(() => s.engine.close());

  test('every folder loads but the one with a layer convscope cannot convert, which is in modelErrors naming it', () => {
    assert.deepEqual(s.registry.names().sort(), [...served].sort());
    assert.equal(s.registry.errors.length, 1, JSON.stringify(s.registry.errors));
    const [error] = s.registry.errors;
    assert.equal(error.file, path.join('unconvertible', 'model.json'));
    assert.match(error.message, /layer "upsample" \(UpSampling2D\) cannot be converted: convscope converts .*Conv2D/);
  });

  test('every Keras layer is a layer named after it, of its TF.js output shape (channels first)', () => {
    for (const name of served) {
      const model = s.registry.models.get(name)!;
      for (const [layer, shape] of Object.entries(manifest.models[name].shapes)) {
        assert.deepEqual(model.layerByName.get(layer)?.outputShape, shape, `${name} ${layer}`);
      }
    }
  });

  for (const name of served) {
    test(`${name}: every layer's output equals TF.js's`, async () => {
      const model = s.registry.models.get(name)!;
      const entry = manifest.models[name];
      const input = loadNpy(entry.input, REFERENCE).data;
      const tensors = Object.keys(entry.layers);
      const outputs = await s.engine.forward(model, 'test/tfjs-layers', () => compileForward(model.graph, tensors), { key: name, data: input });
      tensors.forEach((layer, i) => {
        const error = relativeError(outputs[i], loadNpy(entry.layers[layer], REFERENCE).data);
        assert.ok(error <= TOLERANCE, `${layer}: relative error ${error.toExponential(2)}`);
      });
      assert.ok(tensors.includes(entry.output), 'the model output is among them');
    });
  }

  for (const c of manifest.cases) {
    test(`projection ${c.id}`, async () => {
      const result = await project(s.engine, s.registry.models.get(c.model)!, caseRequest(c, manifest, REFERENCE));
      assertMatchesCase(result, c, REFERENCE, TOLERANCE);
    });
  }

  test('every method and the layer types of both coverage models are among the projections', () => {
    const ops = new Set(manifest.cases.map((c) => c.targetOp));
    for (const op of ['Conv2D', 'ReLU', 'DepthwiseConv2D', 'SeparableConv2D', 'Dense', 'LeakyReLU', 'Concatenate', 'Multiply', 'PReLU', 'Softmax'])
      assert.ok(ops.has(op), op);
    assert.deepEqual(new Set(manifest.cases.map((c) => c.method)), new Set(['DECONVNET', 'GUIDED_BACKPROP', 'SALIENCY']));
  });

  test('quantized weights (uint8, uint16, float16) and the Keras converter layout read as TF.js reads them', () => {
    const json = JSON.parse(fs.readFileSync(path.join(MODELS, 'quantized', 'model.json'), 'utf8'));
    assert.ok(json.modelTopology.model_config, 'saved as tensorflowjs_converter saves Keras models');
    const dtypes = new Set(json.weightsManifest[0].weights.map((w: { quantization?: { dtype: string } }) => w.quantization?.dtype));
    assert.deepEqual(dtypes, new Set(['uint8', 'uint16', 'float16']));
    // (its outputs and a projection equal TF.js's above)
  });

  test("a model's identity is every file it is made of: sha256 over model.json and its shards, bytes of all", () => {
    const model = s.registry.models.get('vgg')!;
    const json = JSON.parse(fs.readFileSync(path.join(MODELS, 'vgg', 'model.json'), 'utf8'));
    const files = ['model.json', ...json.weightsManifest[0].paths];
    assert.ok(files.length > 3, 'the fixture has several shards');
    const hash = createHash('sha256');
    for (const f of files) hash.update(fs.readFileSync(path.join(MODELS, 'vgg', f)));
    assert.equal(model.sha256, hash.digest('hex'));
    assert.equal(
      model.bytes,
      files.reduce((sum, f) => sum + fs.statSync(path.join(MODELS, 'vgg', f)).size, 0),
    );
    assert.equal(model.labels[3], 'grating 54°', 'the sidecar beside the folder (vgg.json) names the classes');
  });
});

describe('TF.js layers models over GraphQL', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    server = await startTestServer({ MODELS_DIR: MODELS });
  });
  afterAll(() => server.close());

  const PROJECTION = `query($model: String!, $layer: String!, $index: Int!, $image: ImageInput!, $method: ProjectionMethod) {
    model(name: $model) { layer(name: $layer) { filter(index: $index) { projection(image: $image, method: $method) { seedValue tensorUrl } } } } }`;

  /** The fixture's input (on the 8-bit grid) as a PNG: the default preprocessing (pixels / 255) gives it back. */
  async function png(model: string): Promise<string> {
    const { data, shape } = loadNpy(manifest.models[model].input, REFERENCE);
    const [C, H, W] = shape.slice(-3);
    const raw = Buffer.alloc(C * H * W);
    for (let i = 0; i < H * W; i++) for (let c = 0; c < C; c++) raw[i * C + c] = Math.round(data[c * H * W + i] * 255);
    return (
      await sharp(raw, { raw: { width: W, height: H, channels: C as 3 } })
        .png()
        .toBuffer()
    ).toString('base64');
  }

  test('an uploaded image projects to what TF.js computes (trained VGG, deconvnet)', async () => {
    const c = manifest.cases.find((k) => k.model === 'vgg' && k.target === 'conv4_2' && k.method === 'DECONVNET' && k.seed === 'MAX')!;
    const res = await gql(server.url, PROJECTION, {
      model: 'vgg',
      layer: 'conv4_2',
      index: c.channel,
      image: { base64: await png('vgg') },
      method: 'DECONVNET',
    });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const p = res.data.model.layer.filter.projection;
    const npy = decodeNpy(Buffer.from(await (await fetch(server.url + p.tensorUrl)).arrayBuffer()));
    const error = relativeError(npy.data, loadNpy(c.expected, REFERENCE).data);
    assert.ok(error <= TOLERANCE, `relative error ${error.toExponential(2)}`);
  });

  test('layers and modelErrors: a layer it cannot convert names the layer; asking for that model says why', async () => {
    const res = await gql(server.url, `{ modelErrors { file message } model(name: "functional_layers") { layers(first: 100) { nodes { name op kind } } } }`);
    assert.deepEqual(
      res.data.modelErrors.map((e: { file: string }) => e.file),
      [path.join('unconvertible', 'model.json')],
    );
    const nodes: { name: string; op: string; kind: string }[] = res.data.model.layers.nodes;
    assert.deepEqual(
      nodes.filter((n) => n.name.startsWith('c1')).map((n) => [n.name, n.op, n.kind]),
      [
        ['c1/Conv', 'Conv', 'CONV'],
        ['c1', 'Relu', 'RELU'],
      ],
    );
    const missing = await gql(server.url, `{ model(name: "unconvertible") { name } }`);
    assert.equal(errorCode(missing), 'NOT_FOUND');
    assert.match(missing.errors![0].message, /failed to load: layer "upsample" \(UpSampling2D\)/);
  });

  test('an op without a backward rule (selu) gives UNSUPPORTED_MODEL naming its node; layers below it project', async () => {
    const image = { base64: await png('unsupported_op') };
    const above = await gql(server.url, PROJECTION, { model: 'unsupported_op', layer: 'conv_b', index: 0, image });
    assert.equal(errorCode(above), 'UNSUPPORTED_MODEL');
    assert.match(above.errors![0].message, /Selu/);
    assert.equal(above.errors![0].extensions!.node, 'selu');
    const below = await gql(server.url, PROJECTION, { model: 'unsupported_op', layer: 'conv_a', index: 0, image });
    assert.equal(below.errors, undefined, JSON.stringify(below.errors));
  });
});

describe('TF.js conversion refuses what it cannot convert, saying which layer and why', () => {
  const conv = (name: string, extra: Record<string, unknown> = {}) => ({
    class_name: 'Conv2D',
    config: {
      name,
      filters: 2,
      kernel_size: [1, 1],
      strides: [1, 1],
      padding: 'valid',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      activation: 'linear',
      use_bias: false,
      ...extra,
    },
  });
  const input = { class_name: 'InputLayer', config: { name: 'x', batch_input_shape: [null, 4, 4, 3], dtype: 'float32' } };
  const kernel = (layer: string): [string, Weight] => [`${layer}/kernel`, { shape: [1, 1, 3, 2], values: new Float32Array(6) }];
  const convert = (layers: unknown[], weights: [string, Weight][] = [kernel('c')]) =>
    convertLayersModel({ topology: { class_name: 'Sequential', config: { name: 's', layers } }, weights: new Map(weights), sha256: '', bytes: 0 });

  const cases: [string, () => unknown, RegExp][] = [
    [
      'an unknown activation',
      () => convert([input, conv('c', { activation: 'gelu' })]),
      /layer "c" \(Conv2D\) has activation "gelu", which convscope cannot convert$/,
    ],
    ['channels_first', () => convert([input, conv('c', { data_format: 'channels_first' })]), /layer "c" \(Conv2D\) is channels_first/],
    ['a missing weight', () => convert([input, conv('c')], []), /layer "c" \(Conv2D\) has no weight "c\/kernel"/],
    [
      'a weight of another shape',
      () => convert([input, conv('c', { filters: 3 })]),
      /layer "c" \(Conv2D\) has weight "kernel" of shape \[1,1,3,2\], expected \[1,1,3,3\]/,
    ],
    [
      'a dilated DepthwiseConv2D',
      () => convert([input, { class_name: 'DepthwiseConv2D', config: { name: 'd', kernel_size: [3, 3], dilation_rate: [2, 2] } }]),
      /layer "d" \(DepthwiseConv2D\) has dilation_rate \[2,2\], which TF.js ignores and Keras applies/,
    ],
    [
      'a nested model',
      () => convert([input, { class_name: 'Sequential', config: { name: 'inner', layers: [] } }]),
      /layer "inner" \(Sequential\) is a nested model/,
    ],
    [
      'a non-image input',
      () => convert([{ ...input, config: { ...input.config, batch_input_shape: [null, 10] } }, conv('c')]),
      /input "x" has shape \[null,10\]: convscope serves image models/,
    ],
    [
      'an input without a size',
      () => convert([{ ...input, config: { ...input.config, batch_input_shape: [null, null, null, 3] } }, conv('c')]),
      /give one in the sidecar: \{"input": \{"size": \[H, W\]\}\}/,
    ],
  ];
  for (const [what, run, message] of cases) test(what, () => assert.throws(run, message));

  test('an input without a size takes the sidecar size', () => {
    const model = convertLayersModel(
      {
        topology: {
          class_name: 'Sequential',
          config: { name: 's', layers: [{ ...input, config: { ...input.config, batch_input_shape: [null, null, null, 3] } }, conv('c')] },
        },
        weights: new Map([kernel('c')]),
        sha256: '',
        bytes: 0,
      },
      [5, 7],
    );
    assert.deepEqual(model.graph.input![0].type!.tensorType!.shape!.dim!.slice(1), [{ dimValue: 3 }, { dimValue: 5 }, { dimValue: 7 }]);
  });

  test('a layer called twice (shared weights)', () => {
    const topology = {
      class_name: 'Model',
      config: {
        name: 'm',
        layers: [
          { name: 'x', class_name: 'InputLayer', config: input.config, inbound_nodes: [] },
          { ...conv('c'), name: 'c', inbound_nodes: [[['x', 0, 0, {}]], [['x', 0, 0, {}]]] },
        ],
        input_layers: [['x', 0, 0]],
        output_layers: [['c', 1, 0]],
      },
    };
    assert.throws(() => convertLayersModel({ topology, weights: new Map([kernel('c')]), sha256: '', bytes: 0 }), /layer "c" \(Conv2D\) is called 2 times/);
  });

  describe('files', () => {
    let dir: string;
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-tfjs-files-'));
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    const write = (json: unknown) => fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    const topology = { class_name: 'Sequential', config: { layers: [] } };

    test('a graph model is refused, pointing to tf2onnx', () => {
      write({ format: 'graph-model', modelTopology: { node: [] } });
      assert.throws(() => readLayersModelFiles(dir, 2 ** 30), /graph model .* convert the SavedModel to ONNX with tf2onnx/);
    });
    test('a shard outside the folder is refused', () => {
      write({ format: 'layers-model', modelTopology: topology, weightsManifest: [{ paths: ['../other/weights.bin'], weights: [] }] });
      assert.throws(() => readLayersModelFiles(dir, 2 ** 30), /weight file path "..\/other\/weights.bin" leaves the model's folder/);
    });
    test('weights past the end of their shards are refused', () => {
      fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(8));
      write({
        format: 'layers-model',
        modelTopology: topology,
        weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', shape: [3], dtype: 'float32' }] }],
      });
      assert.throws(() => readLayersModelFiles(dir, 2 ** 30), /weight "k" \[3\] runs past the end of its weight files \(8 bytes\)/);
    });
    test('files over MAX_MODEL_MB are refused', () => {
      write({ format: 'layers-model', modelTopology: topology, weightsManifest: [{ paths: ['w.bin'], weights: [] }] });
      assert.throws(() => readLayersModelFiles(dir, 100), /over the limit of 0 MB \(MAX_MODEL_MB\)/);
    });
  });
});
