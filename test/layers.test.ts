/**
 * Layers: output shapes and receptive fields checked against values worked out by hand from each
 * fixture's architecture (scripts/make_fixtures.py), plus kind filters and Relay pagination.
 *
 * Receptive-field rule (docs/architecture.md, the Deep Visualization Toolbox's): with r the field of the
 * layer's input (size S, stride J, offset O) and a window op of kernel k, stride s, pad p:
 *   S' = S + (k-1)·J      J' = J·s      O' = O - p·J
 * The image itself is S=1, J=1, O=0. Element-wise ops (ReLU, BN, LRN) keep the field; Add and Concat
 * see the union of their inputs' fields; Flatten/Gemm/global pooling see the whole image (global).
 * Output size of a window op: floor((H + 2p - k)/s) + 1 (ceil instead of floor for ceil_mode pools).
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from 'node:assert/strict';
import { errorCode, gql, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;
let server: Server;

interface LayerNode {
  name: string;
  op: string;
  kind: string;
  outputShape: number[];
  inputs: string[];
  receptiveField: { size: number; stride: number; offset: number; global: boolean; sizeYX: number[]; strideYX: number[]; offsetYX: number[] };
}

/** [name, kind, outputShape, size, stride, offset]: a spatial layer. */
type Row = [string, string, number[], number, number, number];
/** [name, kind, outputShape]: a layer whose units see the whole image. */
type GlobalRow = [string, string, number[]];

const LAYER_FIELDS = `name op kind outputShape inputs receptiveField { size stride offset global sizeYX strideYX offsetYX }`;

async function allLayers(model: string): Promise<LayerNode[]> {
  const r = await gql(
    server.url,
    `query($m: String!) { model(name: $m) { layers(first: 100) { totalCount pageInfo { hasNextPage } nodes { ${LAYER_FIELDS} } } } }`,
    { m: model },
  );
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  const layers = r.data.model.layers;
  assert.equal(layers.pageInfo.hasNextPage, false, `${model} has more than 100 layers?`);
  assert.equal(layers.nodes.length, layers.totalCount);
  return layers.nodes;
}

function checkRows(model: string, layers: LayerNode[], rows: Row[], globals: GlobalRow[]) {
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const [name, kind, shape, size, stride, offset] of rows) {
    const l = byName.get(name);
    assert.ok(l, `${model}: no layer "${name}"; layers: ${[...byName.keys()].join(', ')}`);
    assert.equal(l.kind, kind, `${model} ${name} kind`);
    assert.deepEqual(l.outputShape, shape, `${model} ${name} outputShape`);
    assert.deepEqual(
      { size: l.receptiveField.size, stride: l.receptiveField.stride, offset: l.receptiveField.offset, global: l.receptiveField.global },
      { size, stride, offset, global: false },
      `${model} ${name} receptiveField`,
    );
    // All fixtures use square kernels/strides/pads: both axes agree.
    assert.deepEqual(l.receptiveField.sizeYX, [size, size], `${model} ${name} sizeYX`);
    assert.deepEqual(l.receptiveField.strideYX, [stride, stride], `${model} ${name} strideYX`);
    assert.deepEqual(l.receptiveField.offsetYX, [offset, offset], `${model} ${name} offsetYX`);
  }
  for (const [name, kind, shape] of globals) {
    const l = byName.get(name);
    assert.ok(l, `${model}: no layer "${name}"`);
    assert.equal(l.kind, kind, `${model} ${name} kind`);
    assert.deepEqual(l.outputShape, shape, `${model} ${name} outputShape`);
    assert.equal(l.receptiveField.global, true, `${model} ${name} should see the whole image`);
  }
}

/** The union of fields, per axis: [min start, max end) — computed here from the inputs' fields. */
function union(fields: { size: number; stride: number; offset: number }[]) {
  const start = Math.min(...fields.map((f) => f.offset));
  const end = Math.max(...fields.map((f) => f.offset + f.size));
  return { size: end - start, stride: Math.max(...fields.map((f) => f.stride)), offset: start };
}

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('AlexNet (torchvision layout, 3×224×224)', () => {
  const f = (i: number, op: string) => `/features/features.${i}/${op}`;
  // conv1 k11 s4 p2: H = floor((224+4-11)/4)+1 = 54+1 = 55; S = 11, J = 4, O = -2
  // pool1 k3 s2:     H = floor((55-3)/2)+1 = 27;             S = 11+2·4 = 19, J = 8, O = -2
  // conv2 k5 p2:     H = 27;                                 S = 19+4·8 = 51, J = 8, O = -2-2·8 = -18
  // pool2 k3 s2:     H = floor((27-3)/2)+1 = 13;             S = 51+2·8 = 67, J = 16, O = -18
  // conv3 k3 p1:     H = 13;                                 S = 67+2·16 = 99, J = 16, O = -18-16 = -34
  // conv4 k3 p1:                                             S = 99+32 = 131, O = -50
  // conv5 k3 p1:                                             S = 131+32 = 163, O = -66
  // pool5 k3 s2:     H = floor((13-3)/2)+1 = 6;              S = 163+2·16 = 195, J = 32, O = -66
  // AdaptiveAvgPool2d(6) on 6×6: kernel 1, stride 1:         unchanged
  const rows: Row[] = [
    [f(0, 'Conv'), 'CONV', [16, 55, 55], 11, 4, -2],
    [f(1, 'Relu'), 'RELU', [16, 55, 55], 11, 4, -2],
    [f(2, 'MaxPool'), 'POOL', [16, 27, 27], 19, 8, -2],
    [f(3, 'Conv'), 'CONV', [32, 27, 27], 51, 8, -18],
    [f(4, 'Relu'), 'RELU', [32, 27, 27], 51, 8, -18],
    [f(5, 'MaxPool'), 'POOL', [32, 13, 13], 67, 16, -18],
    [f(6, 'Conv'), 'CONV', [48, 13, 13], 99, 16, -34],
    [f(7, 'Relu'), 'RELU', [48, 13, 13], 99, 16, -34],
    [f(8, 'Conv'), 'CONV', [32, 13, 13], 131, 16, -50],
    [f(9, 'Relu'), 'RELU', [32, 13, 13], 131, 16, -50],
    [f(10, 'Conv'), 'CONV', [32, 13, 13], 163, 16, -66],
    [f(11, 'Relu'), 'RELU', [32, 13, 13], 163, 16, -66],
    [f(12, 'MaxPool'), 'POOL', [32, 6, 6], 195, 32, -66],
    ['/avgpool/AveragePool', 'POOL', [32, 6, 6], 195, 32, -66],
  ];
  // Flatten: 32·6·6 = 1152; Linear 1152→64, ReLU, 64→64, ReLU, 64→10 (Dropout is dropped by the eval export).
  const globals: GlobalRow[] = [
    ['/Flatten', 'RESHAPE', [1152]],
    ['/classifier/classifier.1/Gemm', 'DENSE', [64]],
    ['/classifier/classifier.2/Relu', 'RELU', [64]],
    ['/classifier/classifier.4/Gemm', 'DENSE', [64]],
    ['/classifier/classifier.5/Relu', 'RELU', [64]],
    ['/classifier/classifier.6/Gemm', 'DENSE', [10]],
  ];

  test('every layer: output shape and receptive field', async () => {
    const layers = await allLayers('alexnet');
    // 5 conv + 5 relu + 3 maxpool + avgpool + flatten + 3 gemm + 2 relu = 20
    assert.equal(layers.length, 20);
    assert.deepEqual(
      layers.map((l) => l.name),
      [...rows.map((r) => r[0]), ...globals.map((g) => g[0])],
      'layers in topological order',
    );
    checkRows('alexnet', layers, rows, globals);
  });

  test('inputs name the producing layers; the first conv reads the image', async () => {
    const layers = await allLayers('alexnet');
    const byName = new Map(layers.map((l) => [l.name, l]));
    assert.deepEqual(byName.get(f(0, 'Conv'))!.inputs, []);
    assert.deepEqual(byName.get(f(3, 'Conv'))!.inputs, [f(2, 'MaxPool')]);
  });
});

describe('VGG11 ÷ 8 (3×64×64)', () => {
  const f = (i: number, op: string) => `/features/features.${i}/${op}`;
  // cfg A: 8 M 16 M 32 32 M 64 64 M 64 64 M; conv 3×3 p1 (S += 2J, O -= J, H kept), pool 2×2/2 (S += J, J *= 2, H /= 2)
  const rows: Row[] = [
    [f(0, 'Conv'), 'CONV', [8, 64, 64], 3, 1, -1], //        S = 1+2 = 3,     O = -1
    [f(1, 'Relu'), 'RELU', [8, 64, 64], 3, 1, -1],
    [f(2, 'MaxPool'), 'POOL', [8, 32, 32], 4, 2, -1], //      S = 3+1 = 4,     J = 2
    [f(3, 'Conv'), 'CONV', [16, 32, 32], 8, 2, -3], //        S = 4+2·2 = 8,   O = -1-2 = -3
    [f(4, 'Relu'), 'RELU', [16, 32, 32], 8, 2, -3],
    [f(5, 'MaxPool'), 'POOL', [16, 16, 16], 10, 4, -3], //    S = 8+2 = 10,    J = 4
    [f(6, 'Conv'), 'CONV', [32, 16, 16], 18, 4, -7], //       S = 10+2·4 = 18, O = -3-4 = -7
    [f(7, 'Relu'), 'RELU', [32, 16, 16], 18, 4, -7],
    [f(8, 'Conv'), 'CONV', [32, 16, 16], 26, 4, -11], //      S = 18+8 = 26,   O = -11
    [f(9, 'Relu'), 'RELU', [32, 16, 16], 26, 4, -11],
    [f(10, 'MaxPool'), 'POOL', [32, 8, 8], 30, 8, -11], //    S = 26+4 = 30,   J = 8
    [f(11, 'Conv'), 'CONV', [64, 8, 8], 46, 8, -19], //       S = 30+16 = 46,  O = -11-8 = -19
    [f(12, 'Relu'), 'RELU', [64, 8, 8], 46, 8, -19],
    [f(13, 'Conv'), 'CONV', [64, 8, 8], 62, 8, -27], //       S = 46+16 = 62,  O = -27
    [f(14, 'Relu'), 'RELU', [64, 8, 8], 62, 8, -27],
    [f(15, 'MaxPool'), 'POOL', [64, 4, 4], 70, 16, -27], //   S = 62+8 = 70,   J = 16
    [f(16, 'Conv'), 'CONV', [64, 4, 4], 102, 16, -43], //     S = 70+32 = 102, O = -27-16 = -43
    [f(17, 'Relu'), 'RELU', [64, 4, 4], 102, 16, -43],
    [f(18, 'Conv'), 'CONV', [64, 4, 4], 134, 16, -59], //     S = 102+32 = 134, O = -59
    [f(19, 'Relu'), 'RELU', [64, 4, 4], 134, 16, -59],
    [f(20, 'MaxPool'), 'POOL', [64, 2, 2], 150, 32, -59], //  S = 134+16 = 150, J = 32
  ];
  // Flatten 64·2·2 = 256 → Linear 64 → ReLU → 64 → ReLU → 10
  const globals: GlobalRow[] = [
    ['/Flatten', 'RESHAPE', [256]],
    ['/classifier/classifier.0/Gemm', 'DENSE', [64]],
    ['/classifier/classifier.1/Relu', 'RELU', [64]],
    ['/classifier/classifier.3/Gemm', 'DENSE', [64]],
    ['/classifier/classifier.4/Relu', 'RELU', [64]],
    ['/classifier/classifier.6/Gemm', 'DENSE', [10]],
  ];
  test('every layer: output shape and receptive field', async () => {
    const layers = await allLayers('vgg');
    // 8 conv + 8 relu + 5 pool + flatten + 3 gemm + 2 relu = 27
    assert.equal(layers.length, 27);
    checkRows('vgg', layers, rows, globals);
  });
});

describe('ResNet-18 layout, widths 8-16-32-64 (3×64×64)', () => {
  /** A conv followed by its BN (and ReLU): the same field. */
  const convBn = (prefix: string, conv: string, bn: string, shape: number[], s: number, j: number, o: number, relu?: string): Row[] => [
    [`${prefix}/${conv}/Conv`, 'CONV', shape, s, j, o],
    [`${prefix}/${bn}/BatchNormalization`, 'NORM', shape, s, j, o],
    ...(relu ? ([[`${prefix}/${relu}/Relu`, 'RELU', shape, s, j, o]] as Row[]) : []),
  ];
  const rows: Row[] = [
    // conv1 k7 s2 p3: H = floor((64+6-7)/2)+1 = 32; S = 7, J = 2, O = -3
    ...convBn('', 'conv1', 'bn1', [8, 32, 32], 7, 2, -3),
    ['/relu/Relu', 'RELU', [8, 32, 32], 7, 2, -3],
    // maxpool k3 s2 p1: H = floor((32+2-3)/2)+1 = 16; S = 7+2·2 = 11, J = 4, O = -3-1·2 = -5
    ['/maxpool/MaxPool', 'POOL', [8, 16, 16], 11, 4, -5],

    // layer1.0 (stride 1, no downsample): conv 3×3 p1 at J=4: S += 8, O -= 4
    ...convBn('/layer1/layer1.0', 'conv1', 'bn1', [8, 16, 16], 19, 4, -9, 'relu1'), // 11+8, -5-4
    ...convBn('/layer1/layer1.0', 'conv2', 'bn2', [8, 16, 16], 27, 4, -13), //         19+8, -9-4
    // Add(bn2: [-13, 14), maxpool: [-5, 6)) = [-13, 14): S = 27, O = -13
    ['/layer1/layer1.0/Add', 'MERGE', [8, 16, 16], 27, 4, -13],
    ['/layer1/layer1.0/relu2/Relu', 'RELU', [8, 16, 16], 27, 4, -13],
    // layer1.1
    ...convBn('/layer1/layer1.1', 'conv1', 'bn1', [8, 16, 16], 35, 4, -17, 'relu1'),
    ...convBn('/layer1/layer1.1', 'conv2', 'bn2', [8, 16, 16], 43, 4, -21),
    // Add(bn2: [-21, 22), identity: [-13, 14)) = [-21, 22): S = 43
    ['/layer1/layer1.1/Add', 'MERGE', [8, 16, 16], 43, 4, -21],
    ['/layer1/layer1.1/relu2/Relu', 'RELU', [8, 16, 16], 43, 4, -21],

    // layer2.0: downsample 1×1 s2 p0 at J=4: S = 43, J = 8, O = -21; H = floor((16-1)/2)+1 = 8
    ['/layer2/layer2.0/downsample/downsample.0/Conv', 'CONV', [16, 8, 8], 43, 8, -21],
    ['/layer2/layer2.0/downsample/downsample.1/BatchNormalization', 'NORM', [16, 8, 8], 43, 8, -21],
    // conv1 3×3 s2 p1 at J=4: S = 43+2·4 = 51, J = 8, O = -21-4 = -25; H = floor((16+2-3)/2)+1 = 8
    ...convBn('/layer2/layer2.0', 'conv1', 'bn1', [16, 8, 8], 51, 8, -25, 'relu1'),
    // conv2 3×3 p1 at J=8: S = 51+16 = 67, O = -33
    ...convBn('/layer2/layer2.0', 'conv2', 'bn2', [16, 8, 8], 67, 8, -33),
    // Add(bn2: [-33, 34), downsample: [-21, 22)) = [-33, 34)
    ['/layer2/layer2.0/Add', 'MERGE', [16, 8, 8], 67, 8, -33],
    ['/layer2/layer2.0/relu2/Relu', 'RELU', [16, 8, 8], 67, 8, -33],
    ...convBn('/layer2/layer2.1', 'conv1', 'bn1', [16, 8, 8], 83, 8, -41, 'relu1'), // 67+16, -33-8
    ...convBn('/layer2/layer2.1', 'conv2', 'bn2', [16, 8, 8], 99, 8, -49), //         83+16, -41-8
    ['/layer2/layer2.1/Add', 'MERGE', [16, 8, 8], 99, 8, -49], // [-49, 50) ∪ [-33, 34)
    ['/layer2/layer2.1/relu2/Relu', 'RELU', [16, 8, 8], 99, 8, -49],

    // layer3.0: downsample 1×1 s2 at J=8: S = 99, J = 16, O = -49; H = 4
    ['/layer3/layer3.0/downsample/downsample.0/Conv', 'CONV', [32, 4, 4], 99, 16, -49],
    ['/layer3/layer3.0/downsample/downsample.1/BatchNormalization', 'NORM', [32, 4, 4], 99, 16, -49],
    ...convBn('/layer3/layer3.0', 'conv1', 'bn1', [32, 4, 4], 115, 16, -57, 'relu1'), // 99+2·8, -49-8
    ...convBn('/layer3/layer3.0', 'conv2', 'bn2', [32, 4, 4], 147, 16, -73), //         115+32, -57-16
    ['/layer3/layer3.0/Add', 'MERGE', [32, 4, 4], 147, 16, -73], // [-73, 74) ∪ [-49, 50)
    ['/layer3/layer3.0/relu2/Relu', 'RELU', [32, 4, 4], 147, 16, -73],
    ...convBn('/layer3/layer3.1', 'conv1', 'bn1', [32, 4, 4], 179, 16, -89, 'relu1'),
    ...convBn('/layer3/layer3.1', 'conv2', 'bn2', [32, 4, 4], 211, 16, -105),
    ['/layer3/layer3.1/Add', 'MERGE', [32, 4, 4], 211, 16, -105], // [-105, 106) ∪ [-73, 74)
    ['/layer3/layer3.1/relu2/Relu', 'RELU', [32, 4, 4], 211, 16, -105],

    // layer4.0: downsample 1×1 s2 at J=16: S = 211, J = 32, O = -105; H = 2
    ['/layer4/layer4.0/downsample/downsample.0/Conv', 'CONV', [64, 2, 2], 211, 32, -105],
    ['/layer4/layer4.0/downsample/downsample.1/BatchNormalization', 'NORM', [64, 2, 2], 211, 32, -105],
    ...convBn('/layer4/layer4.0', 'conv1', 'bn1', [64, 2, 2], 243, 32, -121, 'relu1'), // 211+2·16, -105-16
    ...convBn('/layer4/layer4.0', 'conv2', 'bn2', [64, 2, 2], 307, 32, -153), //         243+64, -121-32
    ['/layer4/layer4.0/Add', 'MERGE', [64, 2, 2], 307, 32, -153],
    ['/layer4/layer4.0/relu2/Relu', 'RELU', [64, 2, 2], 307, 32, -153],
    ...convBn('/layer4/layer4.1', 'conv1', 'bn1', [64, 2, 2], 371, 32, -185, 'relu1'),
    ...convBn('/layer4/layer4.1', 'conv2', 'bn2', [64, 2, 2], 435, 32, -217),
    ['/layer4/layer4.1/Add', 'MERGE', [64, 2, 2], 435, 32, -217],
    ['/layer4/layer4.1/relu2/Relu', 'RELU', [64, 2, 2], 435, 32, -217],
  ];
  const globals: GlobalRow[] = [
    ['/avgpool/GlobalAveragePool', 'POOL', [64, 1, 1]],
    ['/Flatten', 'RESHAPE', [64]],
    ['/fc/Gemm', 'DENSE', [10]],
  ];

  test('every layer: output shape and receptive field (downsample paths, Add = union)', async () => {
    const layers = await allLayers('resnet');
    // stem 4 + layer1 2·7 + layers 2-4 (9+7)·3 + head 3 = 4+14+48+3 = 69
    assert.equal(layers.length, 69);
    assert.equal(rows.length + globals.length, 69, 'the table covers every layer');
    checkRows('resnet', layers, rows, globals);
  });

  test('each Add reads the residual branch and the shortcut, and sees their union', async () => {
    const layers = await allLayers('resnet');
    const byName = new Map(layers.map((l) => [l.name, l]));
    assert.deepEqual(byName.get('/layer1/layer1.0/Add')!.inputs, ['/layer1/layer1.0/bn2/BatchNormalization', '/maxpool/MaxPool']);
    assert.deepEqual(byName.get('/layer2/layer2.0/Add')!.inputs, [
      '/layer2/layer2.0/bn2/BatchNormalization',
      '/layer2/layer2.0/downsample/downsample.1/BatchNormalization',
    ]);
    const adds = layers.filter((l) => l.op === 'Add');
    assert.equal(adds.length, 8); // 4 stages × 2 blocks
    for (const add of adds) {
      assert.equal(add.inputs.length, 2, add.name);
      const expected = union(add.inputs.map((n) => byName.get(n)!.receptiveField));
      assert.deepEqual({ size: add.receptiveField.size, stride: add.receptiveField.stride, offset: add.receptiveField.offset }, expected, add.name);
    }
  });
});

describe('SqueezeNet 1.1 ÷ 4 (3×64×64)', () => {
  const f = (i: number, rest: string) => `/features/features.${i}/${rest}`;
  /**
   * A Fire module on an input field (S, J, O): squeeze 1×1 and expand1x1 keep it; expand3x3 (p1)
   * has S+2J, O-J; the Concat is the union [min(O, O-J), max(O+S, O-J+S+2J)) = [O-J, O+S+J): S+2J, O-J.
   */
  const fire = (i: number, sq: number, e: number, hw: number, s: number, j: number, o: number): Row[] => [
    [f(i, 'squeeze/Conv'), 'CONV', [sq, hw, hw], s, j, o],
    [f(i, 'squeeze_activation/Relu'), 'RELU', [sq, hw, hw], s, j, o],
    [f(i, 'expand1x1/Conv'), 'CONV', [e, hw, hw], s, j, o],
    [f(i, 'expand1x1_activation/Relu'), 'RELU', [e, hw, hw], s, j, o],
    [f(i, 'expand3x3/Conv'), 'CONV', [e, hw, hw], s + 2 * j, j, o - j],
    [f(i, 'expand3x3_activation/Relu'), 'RELU', [e, hw, hw], s + 2 * j, j, o - j],
    [f(i, 'Concat'), 'MERGE', [2 * e, hw, hw], s + 2 * j, j, o - j],
  ];
  const rows: Row[] = [
    // conv 3×3 s2 p0: H = floor((64-3)/2)+1 = 31; S = 3, J = 2, O = 0
    [f(0, 'Conv'), 'CONV', [16, 31, 31], 3, 2, 0],
    [f(1, 'Relu'), 'RELU', [16, 31, 31], 3, 2, 0],
    // maxpool 3/2 ceil: H = ceil((31-3)/2)+1 = 15; S = 3+2·2 = 7, J = 4, O = 0
    [f(2, 'MaxPool'), 'POOL', [16, 15, 15], 7, 4, 0],
    ...fire(3, 4, 16, 15, 7, 4, 0), //   concat: S = 7+8 = 15, O = -4
    ...fire(4, 4, 16, 15, 15, 4, -4), // concat: S = 15+8 = 23, O = -8
    // maxpool 3/2 ceil: H = ceil((15-3)/2)+1 = 7; S = 23+2·4 = 31, J = 8, O = -8
    [f(5, 'MaxPool'), 'POOL', [32, 7, 7], 31, 8, -8],
    ...fire(6, 8, 32, 7, 31, 8, -8), //  concat: S = 31+16 = 47, O = -16
    ...fire(7, 8, 32, 7, 47, 8, -16), // concat: S = 63, O = -24
    // maxpool 3/2 ceil: H = ceil((7-3)/2)+1 = 3; S = 63+2·8 = 79, J = 16, O = -24
    [f(8, 'MaxPool'), 'POOL', [64, 3, 3], 79, 16, -24],
    ...fire(9, 12, 48, 3, 79, 16, -24), //   concat: S = 79+32 = 111, O = -40
    ...fire(10, 12, 48, 3, 111, 16, -40), // concat: S = 143, O = -56
    ...fire(11, 16, 64, 3, 143, 16, -56), // concat: S = 175, O = -72
    ...fire(12, 16, 64, 3, 175, 16, -72), // concat: S = 207, O = -88
    // classifier: Conv 1×1 (128→10) and ReLU keep the field
    ['/classifier/classifier.1/Conv', 'CONV', [10, 3, 3], 207, 16, -88],
    ['/classifier/classifier.2/Relu', 'RELU', [10, 3, 3], 207, 16, -88],
  ];
  const globals: GlobalRow[] = [
    ['/classifier/classifier.3/GlobalAveragePool', 'POOL', [10, 1, 1]],
    ['/Flatten', 'RESHAPE', [10]],
  ];

  test('every layer: output shape and receptive field (Concat = union of 1×1 and 3×3 branches)', async () => {
    const layers = await allLayers('squeezenet');
    // conv, relu, pool + 8 Fire × 7 + 2 pools + classifier conv, relu, GAP, flatten = 3+56+2+4 = 65
    assert.equal(layers.length, 65);
    assert.equal(rows.length + globals.length, 65, 'the table covers every layer');
    checkRows('squeezenet', layers, rows, globals);
  });

  test('a Concat reads expand1x1 first, yet its field is the (larger) union, not its first input', async () => {
    const layers = await allLayers('squeezenet');
    const byName = new Map(layers.map((l) => [l.name, l]));
    const concat = byName.get(f(3, 'Concat'))!;
    assert.deepEqual(concat.inputs, [f(3, 'expand1x1_activation/Relu'), f(3, 'expand3x3_activation/Relu')]);
    // expand1x1: [0, 7); expand3x3: [-4, 11); union [-4, 11) = 15 px
    assert.equal(byName.get(f(3, 'expand1x1_activation/Relu'))!.receptiveField.size, 7);
    assert.equal(concat.receptiveField.size, 15);
    assert.equal(concat.receptiveField.offset, -4);
  });
});

describe('ZFNet-style (3×112×112, grouped convs, LRN)', () => {
  const rows: Row[] = [
    // conv1 k7 s2 p1: H = floor((112+2-7)/2)+1 = 53+1 = 54; S = 7, J = 2, O = -1
    ['/conv1/Conv', 'CONV', [16, 54, 54], 7, 2, -1],
    ['/relu1/Relu', 'RELU', [16, 54, 54], 7, 2, -1],
    ['/lrn1/LRN', 'NORM', [16, 54, 54], 7, 2, -1],
    // pool1 k3 s2: H = floor((54-3)/2)+1 = 26; S = 7+2·2 = 11, J = 4, O = -1
    ['/pool1/MaxPool', 'POOL', [16, 26, 26], 11, 4, -1],
    // conv2 k5 s2 p0 (groups 2): H = floor((26-5)/2)+1 = 11; S = 11+4·4 = 27, J = 8, O = -1
    ['/conv2/Conv', 'CONV', [32, 11, 11], 27, 8, -1],
    ['/relu2/Relu', 'RELU', [32, 11, 11], 27, 8, -1],
    ['/lrn2/LRN', 'NORM', [32, 11, 11], 27, 8, -1],
    // pool2 k3 s2: H = floor((11-3)/2)+1 = 5; S = 27+2·8 = 43, J = 16, O = -1
    ['/pool2/MaxPool', 'POOL', [32, 5, 5], 43, 16, -1],
    // conv3-5 k3 p1 at J=16: S += 32, O -= 16
    ['/conv3/Conv', 'CONV', [48, 5, 5], 75, 16, -17],
    ['/relu3/Relu', 'RELU', [48, 5, 5], 75, 16, -17],
    ['/conv4/Conv', 'CONV', [48, 5, 5], 107, 16, -33],
    ['/relu4/Relu', 'RELU', [48, 5, 5], 107, 16, -33],
    ['/conv5/Conv', 'CONV', [32, 5, 5], 139, 16, -49], // docs/architecture.md: ZFNet conv5 sees 139 px
    ['/relu5/Relu', 'RELU', [32, 5, 5], 139, 16, -49],
    // pool5 k3 s2: H = floor((5-3)/2)+1 = 2; S = 139+2·16 = 171, J = 32, O = -49
    ['/pool5/MaxPool', 'POOL', [32, 2, 2], 171, 32, -49],
  ];
  // Flatten 32·2·2 = 128 → fc6 64 → ReLU → (Dropout, dropped in eval) → fc7 10
  const globals: GlobalRow[] = [
    ['/Flatten', 'RESHAPE', [128]],
    ['/fc6/Gemm', 'DENSE', [64]],
    ['/relu6/Relu', 'RELU', [64]],
    ['/fc7/Gemm', 'DENSE', [10]],
  ];
  test('every layer: output shape and receptive field', async () => {
    const layers = await allLayers('zfnet');
    assert.equal(layers.length, 19); // 15 spatial + 4 dense
    checkRows('zfnet', layers, rows, globals);
  });
});

describe('layers(kinds:) and Relay pagination', () => {
  const Q = `query($m: String!, $first: Int, $after: String, $kinds: [LayerKind!]) {
    model(name: $m) { layers(first: $first, after: $after, kinds: $kinds) {
      totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { name kind } } nodes { name } } } }`;

  test('kinds: [CONV] returns exactly the five convs, in order', async () => {
    const r = await gql(server.url, Q, { m: 'alexnet', first: 100, kinds: ['CONV'] });
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    const page = r.data.model.layers;
    assert.equal(page.totalCount, 5);
    assert.deepEqual(
      page.nodes.map((n: { name: string }) => n.name),
      [0, 3, 6, 8, 10].map((i) => `/features/features.${i}/Conv`),
    );
    assert.ok(page.edges.every((e: { node: { kind: string } }) => e.node.kind === 'CONV'));
  });

  test('kinds: [POOL, DENSE] combine (3 max pools + avg pool + 3 Gemms = 7)', async () => {
    const r = await gql(server.url, Q, { m: 'alexnet', first: 100, kinds: ['POOL', 'DENSE'] });
    assert.equal(r.errors, undefined, JSON.stringify(r.errors));
    assert.equal(r.data.model.layers.totalCount, 7);
    assert.deepEqual(new Set(r.data.model.layers.edges.map((e: { node: { kind: string } }) => e.node.kind)), new Set(['POOL', 'DENSE']));
  });

  test('pages of 7 walk all 20 AlexNet layers, each page continuing where the last ended', async () => {
    const full = await gql(server.url, Q, { m: 'alexnet', first: 100 });
    const all: string[] = full.data.model.layers.nodes.map((n: { name: string }) => n.name);
    assert.equal(all.length, 20);
    const seen: string[] = [];
    let after: string | undefined;
    const sizes: number[] = [];
    for (let guard = 0; guard < 10; guard++) {
      const r = await gql(server.url, Q, { m: 'alexnet', first: 7, after });
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
      const page = r.data.model.layers;
      assert.equal(page.totalCount, 20, 'totalCount counts all layers, not the page');
      assert.deepEqual(
        page.nodes.map((n: { name: string }) => n.name),
        page.edges.map((e: { node: { name: string } }) => e.node.name),
      );
      assert.equal(page.pageInfo.startCursor, page.edges[0].cursor);
      assert.equal(page.pageInfo.endCursor, page.edges[page.edges.length - 1].cursor);
      assert.equal(new Set(page.edges.map((e: { cursor: string }) => e.cursor)).size, page.edges.length, 'cursors are distinct');
      assert.equal(page.pageInfo.hasPreviousPage, after !== undefined);
      sizes.push(page.nodes.length);
      seen.push(...page.nodes.map((n: { name: string }) => n.name));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    assert.deepEqual(sizes, [7, 7, 6]); // 20 = 7 + 7 + 6
    assert.deepEqual(seen, all, 'no layer skipped or repeated');
  });

  test('a page that ends exactly at the last item has hasNextPage false', async () => {
    // 20 layers in pages of 10: [0..9] has a next page, [10..19] does not
    const p1 = (await gql(server.url, Q, { m: 'alexnet', first: 10 })).data.model.layers;
    assert.equal(p1.pageInfo.hasNextPage, true);
    const p2 = (await gql(server.url, Q, { m: 'alexnet', first: 10, after: p1.pageInfo.endCursor })).data.model.layers;
    assert.equal(p2.nodes.length, 10);
    assert.equal(p2.pageInfo.hasNextPage, false);
    // 5 convs, first: 5
    const convs = (await gql(server.url, Q, { m: 'alexnet', first: 5, kinds: ['CONV'] })).data.model.layers;
    assert.equal(convs.nodes.length, 5);
    assert.equal(convs.pageInfo.hasNextPage, false);
    // after the last item: an empty page
    const empty = (await gql(server.url, Q, { m: 'alexnet', first: 3, after: p2.pageInfo.endCursor })).data.model.layers;
    assert.deepEqual(empty.nodes, []);
    assert.equal(empty.pageInfo.hasNextPage, false);
    assert.equal(empty.totalCount, 20);
  });

  test('an edge cursor in the middle of a page works as `after`', async () => {
    const first = await gql(server.url, Q, { m: 'alexnet', first: 5 });
    const third = first.data.model.layers.edges[2];
    const r = await gql(server.url, Q, { m: 'alexnet', first: 2, after: third.cursor });
    const full = await gql(server.url, Q, { m: 'alexnet', first: 100 });
    assert.deepEqual(
      r.data.model.layers.nodes.map((n: { name: string }) => n.name),
      full.data.model.layers.nodes.slice(3, 5).map((n: { name: string }) => n.name),
    );
  });

  test('filters paginate: 16 conv1 filters in pages of 5 are indices 0..15', async () => {
    const FQ = `query($after: String) { model(name: "alexnet") { layer(name: "/features/features.0/Conv") {
      filters(first: 5, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { index } } } } }`;
    const indices: number[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const r = await gql(server.url, FQ, { after });
      assert.equal(r.errors, undefined, JSON.stringify(r.errors));
      const page = r.data.model.layer.filters;
      assert.equal(page.totalCount, 16);
      indices.push(...page.nodes.map((n: { index: number }) => n.index));
      pages++;
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
      assert.ok(pages < 10);
    }
    assert.equal(pages, 4); // 16 = 5 + 5 + 5 + 1
    assert.deepEqual(
      indices,
      Array.from({ length: 16 }, (_, i) => i),
    );
  });

  test('first: 0 and first: 101 are BAD_USER_INPUT (1 to 100)', async () => {
    for (const first of [0, 101, -1]) {
      const r = await gql(server.url, Q, { m: 'alexnet', first });
      assert.equal(errorCode(r), 'BAD_USER_INPUT', `first: ${first} → ${JSON.stringify(r.errors)}`);
      assert.match(r.errors![0].message, /first/);
    }
    const f = await gql(server.url, `{ model(name: "alexnet") { layer(name: "/features/features.0/Conv") { filters(first: 101) { totalCount } } } }`);
    assert.equal(errorCode(f), 'BAD_USER_INPUT');
    const ok = await gql(server.url, Q, { m: 'alexnet', first: 100 });
    assert.equal(ok.errors, undefined, 'first: 100 is allowed');
  });

  test('a bad `after` cursor is BAD_USER_INPUT', async () => {
    const modelId = (await gql(server.url, `{ model(name: "alexnet") { id } }`)).data.model.id;
    for (const after of ['not a cursor', 'b2Zmc2V0Og', Buffer.from('offset:-3').toString('base64url'), modelId]) {
      const r = await gql(server.url, Q, { m: 'alexnet', first: 3, after });
      assert.equal(errorCode(r), 'BAD_USER_INPUT', `after: ${after} → ${JSON.stringify(r.errors ?? r.data)}`);
    }
  });
});
