/**
 * The deconvnet engine against the independent PyTorch reference (scripts/make_fixtures.py):
 * every case, one at a time and batched, on the native CPU backend and on WASM.
 * Tolerance: max |ours − torch| ≤ 1e-4 · max |torch|, and the same position of the largest |value|.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { loadConfig } from '../src/config';
import { ancestors, batchInput, GraphBuilder } from '../src/compiler/builder';
import { CompiledGraph, compileForward, compileShapeProbe } from '../src/compiler/forward';
import { compileProjection, ITEM_INPUTS } from '../src/compiler/projection';
import { SESSION_LOAD_BYTES_PER_GRAPH_BYTE } from '../src/engine/engine';
import { GraphCache } from '../src/engine/graph-cache';
import { project, ProjectionItem } from '../src/engine/projections';
import { writeParts } from '../src/onnx/proto';
import { byteLength, rawBytes } from '../src/onnx/weights';
import { createServices, Services } from '../src/service/services';
import { FIXTURE_MODELS } from './helpers';
import { argmaxAbs, loadManifest, loadNpy, ReferenceCase, relativeError } from './reference';

const TOLERANCE = 1e-4;
const manifest = loadManifest();

async function services(backend: string, env: Record<string, string> = {}): Promise<Services> {
  return createServices(
    loadConfig({ MODELS_DIR: FIXTURE_MODELS, CACHE_DIR: `/tmp/convscope-test-${backend}`, LOG_LEVEL: 'silent', CONVSCOPE_BACKEND: backend, ...env }),
  );
}

function request(
  services: Services,
  c: ReferenceCase,
  input = loadNpy(manifest.models[c.model].input).data,
  key = c.model,
): [ReturnType<typeof model>, ProjectionItem] {
  return [
    model(services, c.model),
    {
      target: c.targetOutput,
      method: c.method,
      lrn: c.lrn,
      image: { key, data: input },
      channel: c.channel,
      seed: c.seed,
      position: c.position ?? undefined,
    },
  ];
}

function model(services: Services, name: string) {
  const m = services.registry.models.get(name);
  assert.ok(m, `fixture model ${name} loaded`);
  return m;
}

function assertMatches(actual: Float32Array, c: ReferenceCase, what = c.id) {
  const expected = loadNpy(c.expected).data;
  const error = relativeError(actual, expected);
  assert.ok(error <= TOLERANCE, `${what}: relative error ${error.toExponential(2)} > ${TOLERANCE}`);
  assert.equal(argmaxAbs(actual), argmaxAbs(expected), `${what}: position of the largest |value|`);
}

describe('projections match PyTorch (cpu backend)', () => {
  let s: Services;
  beforeAll(async () => {
    s = await services('cpu');
  });
  afterAll(() => s.engine.close());

  test('the reference covers every method, seed mode and LRN mode', () => {
    const seen = (f: (c: ReferenceCase) => string) => new Set(manifest.cases.map(f));
    assert.deepEqual([...seen((c) => c.method)].sort(), ['DECONVNET', 'GUIDED_BACKPROP', 'SALIENCY']);
    assert.deepEqual([...seen((c) => c.seed)].sort(), ['FULL_MAP', 'MAX', 'POSITION']);
    assert.deepEqual([...seen((c) => c.lrn)].sort(), ['GRADIENT', 'IDENTITY']);
    assert.ok(manifest.cases.length >= 60);
  });

  for (const c of manifest.cases) {
    test(c.id, async () => {
      const result = await project(s.engine, ...request(s, c));
      assertMatches(result.projection, c);
      assert.ok(Math.abs(result.seedValue - c.seedValue) <= 1e-4 * Math.max(1, Math.abs(c.seedValue)), `seed value ${result.seedValue} vs ${c.seedValue}`);
      if (c.seedPosition) assert.deepEqual(result.position, c.seedPosition);
    });
  }

  test('overlapping max-pool windows sum at shared switches (not overwrite, as MaxUnpool would)', async () => {
    const c = manifest.cases.find((k) => k.expectedOverwrite);
    assert.ok(c, 'the reference has an overwrite variant');
    const result = await project(s.engine, ...request(s, c));
    assertMatches(result.projection, c);
    const overwrite = loadNpy(c.expectedOverwrite!).data;
    const differs = relativeError(result.projection, overwrite);
    assert.ok(differs > 0.1, `summed and overwritten unpooling should differ clearly, got ${differs}`);
  });

  test('concurrent requests are merged into batched runs and give the same numbers', async () => {
    const cases = manifest.cases.filter((c) => c.model === 'vgg' || c.model === 'squeezenet');
    // A second image per model (the reference input mirrored) checks that items find their own image.
    const mirrored = (name: string) => {
      const { data, shape } = loadNpy(manifest.models[name].input);
      const [, C, H, W] = shape;
      const out = new Float32Array(data.length);
      for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[(c * H + y) * W + x] = data[(c * H + y) * W + (W - 1 - x)];
      return out;
    };
    const alone: Float32Array[] = [];
    for (const c of cases) alone.push((await project(s.engine, ...request(s, c, mirrored(c.model), `${c.model}-mirror`))).projection);
    const runsBefore = s.engine.stats.runs;
    const batched = await Promise.all(
      cases.flatMap((c) => [project(s.engine, ...request(s, c)), project(s.engine, ...request(s, c, mirrored(c.model), `${c.model}-mirror`))]),
    );
    const runs = s.engine.stats.runs - runsBefore;
    // One compiled graph per (model, target, method, lrn): each gets one run for all its items.
    const graphs = new Set(cases.map((c) => `${c.model}/${c.targetOutput}/${c.method}/${c.lrn}`)).size;
    assert.equal(runs, graphs, `${cases.length * 2} projections over ${graphs} graphs took ${runs} runs`);
    cases.forEach((c, i) => {
      assertMatches(batched[2 * i].projection, c, `${c.id} (batched)`);
      assert.ok(relativeError(batched[2 * i + 1].projection, alone[i]) <= 1e-5, `${c.id} mirrored: batched = alone`);
    });
  });
});

describe('the other ways of compiling a projection match PyTorch too', () => {
  let s: Services;
  beforeAll(async () => {
    s = await services('cpu');
  });
  afterAll(() => s.engine.close());

  // The fixtures are opset 17 (SCATTER_ADD); models of opset 11–15 scatter in groups, older ones
  // recompute the switches from the forward values (and use whole maps).
  for (const unpool of ['SCATTER_GROUPS', 'TAPS'] as const) {
    for (const c of manifest.cases) {
      test(`${c.id} (${unpool})`, async () => {
        const [m, req] = request(s, c);
        assertMatches((await project(s.engine, m, { ...req, unpool })).projection, c, `${c.id} (${unpool})`);
      });
    }
  }
  // MAX and POSITION seeds run on regions by default; the whole-map graph must agree.
  for (const c of manifest.cases.filter((k) => k.seed !== 'FULL_MAP')) {
    test(`${c.id} (whole maps)`, async () => {
      const [m, req] = request(s, c);
      assertMatches((await project(s.engine, m, { ...req, regions: false })).projection, c, `${c.id} (whole maps)`);
    });
  }

  test('a one-position seed really runs on regions: only its receptive field reaches the input', async () => {
    // AlexNet layout, relu5: the graph's projection output is the 163×163 region (with its
    // origin as a fourth output), not the 224×224 image, which only whole maps would give.
    const c = manifest.cases.filter((k) => k.model === 'alexnet' && k.targetOp === 'Relu').pop()!;
    const m = model(s, 'alexnet');
    const graph = compileProjection({ graph: m.graph, shapes: m.shapes, target: c.targetOutput, method: 'DECONVNET', lrn: 'IDENTITY', regions: true });
    assert.equal(graph.outputs.length, 4, 'the region origin is an output');
    const session = await s.engine.runtime.createSession(graph.model);
    const [Ct, Ht, Wt] = m.shapes.get(c.targetOutput)!;
    const { Tensor } = s.engine.runtime;
    const channel = new Float32Array(Ct);
    channel[c.channel] = 1;
    const out = await session.run({
      [m.inputName]: new Tensor('float32', loadNpy(manifest.models.alexnet.input).data, [1, ...m.shapes.get(m.inputName)!]),
      [ITEM_INPUTS.image]: new Tensor('int64', BigInt64Array.of(0n), [1]),
      [ITEM_INPUTS.channel]: new Tensor('float32', channel, [1, Ct]),
      [ITEM_INPUTS.mask]: new Tensor('float32', new Float32Array(Ht * Wt), [1, 1, Ht, Wt]),
      [ITEM_INPUTS.useMax]: new Tensor('float32', Float32Array.of(1), [1, 1, 1, 1]),
    });
    assert.deepEqual(out[graph.outputs[0]].dims, [1, 3, 163, 163]);
    await session.release();
  });

  test('regions equal whole maps for seeds at every border and corner', async () => {
    // Seeds whose receptive field runs off the image, through strided, padded convs and
    // overlapping pools (the alexnet and zfnet fixtures), in both unpooling modes.
    for (const name of ['alexnet', 'zfnet']) {
      const c = manifest.cases.filter((k) => k.model === name && k.targetOp === 'Relu').pop()!;
      const [m, base] = request(s, c);
      const [channels, H, W] = m.shapes.get(c.targetOutput)!;
      const positions = [
        [0, 0],
        [0, W - 1],
        [H - 1, 0],
        [H - 1, W - 1],
        [0, W >> 1],
        [H >> 1, 0],
        [H - 1, W >> 1],
        [H >> 1, W - 1],
      ];
      for (const unpool of ['SCATTER_ADD', 'SCATTER_GROUPS'] as const) {
        for (const method of ['DECONVNET', 'GUIDED_BACKPROP'] as const) {
          for (const [y, x] of positions) {
            // The first channel active there (a unit at zero projects nothing).
            let channel = 0;
            while ((await project(s.engine, m, { ...base, channel, seed: 'POSITION', position: { y, x } })).seedValue === 0) channel++;
            assert.ok(channel < channels, `some unit of ${name} is active at (${y}, ${x})`);
            const req: ProjectionItem = { ...base, channel, method, unpool, seed: 'POSITION', position: { y, x } };
            const [regions, whole] = await Promise.all([project(s.engine, m, req), project(s.engine, m, { ...req, regions: false })]);
            const what = `${name} ${method} ${unpool} at (${y}, ${x}), channel ${channel}`;
            assert.ok(
              whole.projection.some((v) => v !== 0),
              `${what}: the whole-map projection is not all zero`,
            );
            assert.ok(relativeError(regions.projection, whole.projection) <= 1e-5, `${what}: ${relativeError(regions.projection, whole.projection)}`);
            // Whole maps are kept as their non-zero box; a region as itself cut to the image, which holds that box.
            const nonZero = nonZeroBox(whole.projection, m.shapes.get(m.inputName)!);
            assert.deepEqual(whole.box, nonZero, `${what}: the whole map's box`);
            const [t, l, h, w] = regions.box;
            assert.ok(
              t <= nonZero[0] && l <= nonZero[1] && t + h >= nonZero[0] + nonZero[2] && l + w >= nonZero[1] + nonZero[3],
              `${what}: region box ${regions.box} holds ${nonZero}`,
            );
            const [C, H, W] = m.shapes.get(m.inputName)!;
            assert.ok(t >= 0 && l >= 0 && t + h <= H && l + w <= W, `${what}: region box ${regions.box} is inside the image`);
            assert.equal(regions.inside.length, C * h * w);
          }
        }
      }
    }
  });
});

/** The smallest [top, left, height, width] outside of which `p` [C, H, W] is zero, pixel by pixel. */
function nonZeroBox(p: Float32Array, [C, H, W]: number[]): number[] {
  const ys: number[] = [];
  const xs: number[] = [];
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        if (p[(c * H + y) * W + x] !== 0) {
          ys.push(y);
          xs.push(x);
        }
      }
    }
  }
  if (!ys.length) return [0, 0, 0, 0];
  const [top, left] = [Math.min(...ys), Math.min(...xs)];
  return [top, left, Math.max(...ys) - top + 1, Math.max(...xs) - left + 1];
}

describe('batching', () => {
  let s: Services;
  beforeAll(async () => {
    s = await services('cpu');
  });
  afterAll(() => s.engine.close());

  test('many units of one layer and image share one run per kind of seed (and one forward pass each)', async () => {
    const c = manifest.cases.find((k) => k.model === 'zfnet' && k.targetOp === 'Relu')!;
    const [m, base] = request(s, c);
    const channels = m.shapes.get(c.targetOutput)![0];
    await project(s.engine, m, base); // compile and load outside the measured part
    const runsBefore = s.engine.stats.runs;
    const seeds: ProjectionItem[] = Array.from({ length: Math.min(channels, 12) }, (_, k) => ({
      ...base,
      channel: k,
      seed: k % 3 === 0 ? 'FULL_MAP' : k % 3 === 1 ? 'MAX' : 'POSITION',
      position: k % 3 === 2 ? { y: 1, x: 0 } : undefined,
    }));
    const together = await Promise.all(seeds.map((r) => project(s.engine, m, r)));
    // MAX and POSITION seeds run on regions, FULL_MAP on whole maps: two graphs, a run each.
    assert.equal(s.engine.stats.runs - runsBefore, 2);
    for (let k = 0; k < seeds.length; k++) {
      const alone = await project(s.engine, m, seeds[k]);
      assert.ok(relativeError(together[k].projection, alone.projection) <= 1e-6, `channel ${k}: batched = alone`);
      assert.equal(together[k].seedValue, alone.seedValue);
    }
  });
});

describe('the load-time shape probe', () => {
  test('it leaves out the big weights (zeros made at run time) and gives every activation the shape the real forward pass gives', async () => {
    // No graph cache: graphs carry their weights (none refer to a shared weights file), as the probe's does.
    const s = await services('cpu', { GRAPH_CACHE_MB: '0' });
    try {
      for (const name of ['alexnet', 'resnet', 'vgg']) {
        const m = model(s, name);
        const tensors = [...m.graph.dataPath].filter((t) => t !== m.graph.inputName);
        const real = compileForward(m.graph, tensors);
        const probe = compileShapeProbe(m.graph, tensors, []);
        assert.ok(
          probe.model.byteLength < real.model.byteLength / 2,
          `${name}: probe graph ${probe.model.byteLength} bytes, forward graph ${real.model.byteLength}`,
        );
        const input = () => new s.engine.runtime.Tensor('float32', new Float32Array(2 * m.inputShape.reduce((a, b) => a * b, 1)), [2, ...m.inputShape]);
        const shapes = async (g: typeof real, optimize: boolean) => {
          const session = await s.engine.runtime.createSession(g.model.slice(), { optimize });
          try {
            const out = await session.run({ [m.inputName]: input() });
            return g.outputs.map((o) => out[o].dims.join('x'));
          } finally {
            await session.release();
          }
        };
        assert.deepEqual(await shapes(probe, false), await shapes(real, true), name);
      }
    } finally {
      await s.engine.close();
    }
  });
});

describe('sessions within SESSION_MEMORY_MB', () => {
  test('past the bound the least recently used idle sessions are released; a released graph loads again and gives the same numbers', async () => {
    // Bound to about two of the zfnet fixture's projection graphs.
    const cases = manifest.cases.filter((k) => k.model === 'zfnet' && k.seed !== 'FULL_MAP');
    const targets = [...new Map(cases.map((c) => [`${c.targetOutput}/${c.method}/${c.lrn}`, c])).values()].slice(0, 4);
    const free = await services('cpu');
    const reference = await Promise.all(targets.map((c) => project(free.engine, ...request(free, c))));
    const sizes = free.engine.sessionStats;
    await free.engine.close();
    assert.ok(targets.length === 4 && sizes.keys.length >= 4, `four graphs: ${targets.length}, ${sizes.keys.length} sessions`);
    const bound = (2.5 * sizes.bytes) / sizes.keys.length;
    const s = await services('cpu', { SESSION_MEMORY_MB: String(bound / 1024 / 1024) });
    // Room is made before a session is created, not after: what is loaded then, plus the new
    // session's load-time peak, fits the bound (or nothing idle is left to release).
    const create = s.engine.runtime.createSession.bind(s.engine.runtime);
    const roomAtCreate: string[] = [];
    s.engine.runtime.createSession = (source, options) => {
      const graphBytes = typeof source === 'string' ? fs.statSync(source).size : source.byteLength;
      const loaded = s.engine.sessionStats.bytes;
      if (loaded > 0 && loaded + SESSION_LOAD_BYTES_PER_GRAPH_BYTE * graphBytes > bound) roomAtCreate.push(`${loaded} loaded + ${graphBytes} graph bytes`);
      return create(source, options);
    };
    try {
      for (let round = 0; round < 2; round++) {
        for (const [i, c] of targets.entries()) {
          const result = await project(s.engine, ...request(s, c));
          assert.ok(relativeError(result.projection, reference[i].projection) <= 1e-6, `${c.id}, round ${round}`);
          assert.ok(
            s.engine.sessionStats.bytes <= Math.max(bound, (sizes.bytes / sizes.keys.length) * 2),
            `round ${round}: ${s.engine.sessionStats.bytes} bytes loaded`,
          );
        }
      }
      assert.ok(s.engine.stats.evictions >= 4, `released ${s.engine.stats.evictions} times`);
      assert.deepEqual(roomAtCreate, [], 'sessions created over the bound');
      // A session released between a batch's load() and its run() is loaded again for the run.
      const m = model(s, 'zfnet');
      const compile = () => compileForward(m.graph, [targets[0].targetOutput]);
      const loaded = await s.engine.load('forward-to-release', compile);
      for (const c of targets) await project(s.engine, ...request(s, c));
      assert.ok(!s.engine.sessionStats.keys.includes('forward-to-release'), 'released by the projections after it');
      const input = loadNpy(manifest.models.zfnet.input).data;
      const [out] = Object.values(
        await s.engine.run(loaded, { [m.inputName]: new s.engine.runtime.Tensor('float32', input.slice(), [1, ...m.inputShape]) }, 1),
      );
      const expected = Object.values(
        await (
          await s.engine.load('forward-again', compile)
        ).session.run({ [m.inputName]: new s.engine.runtime.Tensor('float32', input.slice(), [1, ...m.inputShape]) }),
      )[0];
      assert.deepEqual(out.data, expected.data);
    } finally {
      await s.engine.close();
    }
  });
});

describe('compiled graphs on disk (GRAPH_CACHE_MB)', () => {
  test('after a restart a graph is loaded from CACHE_DIR/graphs, not compiled, and gives the same numbers; past the bound the oldest go', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-graphs-'));
    const cases = manifest.cases.filter((k) => k.model === 'vgg' && k.seed === 'MAX');
    const env = { CACHE_DIR: dir };
    const first = await createServices(loadConfig({ MODELS_DIR: FIXTURE_MODELS, LOG_LEVEL: 'silent', ...env }));
    const before = await Promise.all(cases.map((c) => project(first.engine, ...request(first, c))));
    const compiled = first.engine.stats.compiled;
    await first.engine.close();
    assert.ok(compiled >= 2, `${compiled} graphs compiled`);
    const files = fs.readdirSync(path.join(dir, 'graphs')).filter((f) => f.endsWith('.onnx'));
    assert.equal(files.length, compiled);
    const again = await createServices(loadConfig({ MODELS_DIR: FIXTURE_MODELS, LOG_LEVEL: 'silent', ...env }));
    try {
      const after = await Promise.all(cases.map((c) => project(again.engine, ...request(again, c))));
      assert.equal(again.engine.stats.compiled, 0, 'nothing compiled after the restart');
      assert.equal(again.engine.stats.graphsFromDisk, compiled);
      after.forEach((r, i) => assert.deepEqual(r.projection, before[i].projection));
    } finally {
      await again.engine.close();
    }
    // A bound smaller than any graph keeps only the one just written.
    const small = await createServices(loadConfig({ MODELS_DIR: FIXTURE_MODELS, LOG_LEVEL: 'silent', CACHE_DIR: dir, GRAPH_CACHE_MB: '0.001' }));
    try {
      await project(
        small.engine,
        ...request(
          small,
          manifest.cases.find((k) => k.model === 'zfnet')!,
        ),
      );
      assert.equal(small.engine.stats.compiled, 1);
      assert.equal(fs.readdirSync(path.join(dir, 'graphs')).filter((f) => f.endsWith('.onnx')).length, 1, 'the older graphs were evicted');
    } finally {
      await small.engine.close();
    }
  });

  test("the models' weights files count in the bound: graphs are evicted to make room for them", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-graphs-'));
    const cache = new GraphCache(dir, 1500);
    fs.writeFileSync(path.join(cache.weightsDir, 'a-model.weights'), new Uint8Array(1000));
    const graph = (bytes: number) => ({ parts: [new Uint8Array(bytes)], outputs: ['y'] }) as unknown as CompiledGraph;
    for (const key of ['a', 'b', 'c']) await cache.put(key, graph(300));
    // The three graphs alone fit in 1500 bytes; beside the weights only the last does.
    const kept = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx'));
    assert.equal(kept.length, 1);
    assert.ok(cache.get('c'), 'the graph just written is kept');
    assert.equal(cache.get('a'), undefined);
    assert.ok(fs.existsSync(path.join(cache.weightsDir, 'a-model.weights')), 'weights files are not evicted');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("a model's weights shared by its graphs (CPU backend, with the graph cache)", () => {
  test('graphs refer to one file of the weights, written once beside them (again at load if it is gone); the numbers are those of graphs that carry their weights', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-weights-'));
    const cases = manifest.cases.filter((k) => k.model === 'vgg' && k.seed === 'MAX');
    const inline = await services('cpu', { SHARED_WEIGHTS: 'false' });
    const shared = await createServices(loadConfig({ MODELS_DIR: FIXTURE_MODELS, LOG_LEVEL: 'silent', CACHE_DIR: dir, SHARED_WEIGHTS: 'true' }));
    let expected: Awaited<ReturnType<typeof project>>[];
    try {
      assert.equal(inline.engine.sharesWeights, false);
      const uncached = await services('cpu', { GRAPH_CACHE_MB: '0' });
      await uncached.engine.close();
      assert.equal(uncached.engine.sharesWeights, false, 'no graph cache');
      assert.equal(shared.engine.sharesWeights, true);
      const m = model(shared, 'vgg');
      const weights = m.graph.sharedWeights!;
      const logits = compileForward(m.graph, [m.graph.outputNames[0]]);
      assert.equal(logits.sharedWeights, weights);
      assert.ok(
        logits.sharedBytes! > 0 && logits.model.byteLength < logits.sharedBytes!,
        `graph ${logits.model.byteLength} bytes, shared ${logits.sharedBytes}`,
      );
      assert.equal(logits.foldedBytes, 0, 'a forward pass folds no weights');
      assert.equal(compileForward(model(inline, 'vgg').graph, [m.graph.outputNames[0]]).sharedWeights, undefined);
      // A weight transposed (a MatMul's backward rule) is folded by the runtime into a copy: counted.
      const gemm = m.graph.nodes.find((n) => n.op === 'Gemm')!;
      const b = new GraphBuilder(m.graph);
      for (const node of ancestors(m.graph, [gemm.proto.output[0]])) b.copy(node);
      const transposed = b.op('Transpose', [gemm.proto.input[1]], { perm: [1, 0] });
      const bias = b.op('Neg', [gemm.proto.input[2]]); // folded too, but carried inside the graph
      const folding = b.build([batchInput(m.inputName, m.graph.inputDims.slice(1))], [b.op('MatMul', [b.op('Add', [gemm.proto.output[0], bias]), transposed])]);
      assert.equal(folding.foldedBytes, byteLength(m.graph.initializers.get(gemm.proto.input[1])!));
      expected = await Promise.all(cases.map((c) => project(inline.engine, ...request(inline, c))));
      const got = await Promise.all(cases.map((c) => project(shared.engine, ...request(shared, c))));
      got.forEach((r, i) => assert.ok(relativeError(r.projection, expected[i].projection) <= 1e-6, `case ${cases[i].id}`));
      const file = path.join(dir, 'graphs', weights.location);
      assert.equal(fs.statSync(file).size, weights.bytes);
      const named = fs
        .readdirSync(path.join(dir, 'graphs'))
        .filter((f) => f.endsWith('.json'))
        .map((f) => JSON.parse(fs.readFileSync(path.join(dir, 'graphs', f), 'utf8')).shared?.file)
        .filter((f) => f !== undefined);
      assert.ok(named.length > 1 && named.every((f) => f === weights.location), 'one file for all the graphs');
      // Sessions count the shared weights they refer to at a fraction of graphs that carry them (small weights stay inside).
      assert.ok(
        shared.engine.sessionStats.bytes < inline.engine.sessionStats.bytes,
        `${shared.engine.sessionStats.bytes} vs ${inline.engine.sessionStats.bytes}`,
      );
    } finally {
      await inline.engine.close();
      await shared.engine.close();
    }
    // After a restart without the file, the model's load writes it again, and every stored graph is read, none compiled.
    const file = path.join(dir, 'graphs', model(shared, 'vgg').graph.sharedWeights!.location);
    const size = fs.statSync(file).size;
    const infos = fs.readdirSync(path.join(dir, 'graphs')).filter((f) => f.endsWith('.json'));
    const referring = infos.filter((f) => JSON.parse(fs.readFileSync(path.join(dir, 'graphs', f), 'utf8')).shared).length;
    assert.ok(referring > 0 && referring < infos.length, `${referring} of ${infos.length} graphs refer to the file`);
    fs.rmSync(file);
    const restarted = await createServices(loadConfig({ MODELS_DIR: FIXTURE_MODELS, LOG_LEVEL: 'silent', CACHE_DIR: dir, SHARED_WEIGHTS: 'true' }));
    try {
      assert.equal(fs.statSync(file).size, size);
      const again = await Promise.all(cases.map((c) => project(restarted.engine, ...request(restarted, c))));
      assert.equal(restarted.engine.stats.compiled, 0);
      assert.equal(restarted.engine.stats.graphsFromDisk, infos.length);
      again.forEach((r, i) => assert.ok(relativeError(r.projection, expected[i].projection) <= 1e-6, `case ${cases[i].id} after the restart`));
    } finally {
      await restarted.engine.close();
    }
  });
});

describe("a model's large weights kept on disk, not in memory (with the graph cache)", () => {
  test('they are dropped from memory once written, nothing holds the decoded file, and every graph compiled from them (whole, or written from its parts) gives the same bytes and numbers', async () => {
    const cases = manifest.cases.filter((k) => k.model === 'vgg');
    const onDisk = await services('cpu');
    const inMemory = await services('cpu', { GRAPH_CACHE_MB: '0' });
    try {
      const stored = model(onDisk, 'vgg').graph;
      const held = model(inMemory, 'vgg').graph;
      assert.equal(held.weights, undefined, 'no graph cache: the weights stay in memory');
      const weights = stored.weights!;
      const large = [...held.initializers.values()].filter((t) => (t.rawData?.byteLength ?? 0) >= 64 * 1024);
      assert.ok(large.length >= 3, `${large.length} large weights`);
      for (const t of large) {
        const s = stored.initializers.get(t.name!)!;
        assert.equal(s.rawData, undefined, `${t.name} dropped`);
        assert.equal(s.stored?.length, t.rawData!.byteLength);
        assert.ok(Buffer.from(rawBytes(s)!).equals(Buffer.from(t.rawData!)), `${t.name} read back`);
      }
      const file = large.map((t) => stored.initializers.get(t.name!)!.stored!.file)[0];
      assert.equal(fs.statSync(file).size, weights.bytes);
      // Every bytes field left has a buffer of its own (none a view of the decoded file's).
      const views: string[] = [];
      const walk = (v: unknown, at: string) => {
        if (v instanceof Uint8Array) {
          if (v.buffer.byteLength !== v.byteLength) views.push(at);
        } else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
      };
      walk(stored.proto, 'model');
      assert.deepEqual(views, []);
      // The same graphs, byte for byte, and the same projections.
      const logits = [stored.outputNames[0]];
      const compiled = compileForward(stored, logits);
      assert.ok(Buffer.from(compiled.model).equals(Buffer.from(compileForward(held, logits).model)));
      // Written from its parts (weights read from the file one at a time), the file holds the same bytes.
      const written = path.join(os.tmpdir(), `convscope-parts-${process.pid}.onnx`);
      await writeParts(written, compiled.parts);
      assert.ok(fs.readFileSync(written).equals(Buffer.from(compiled.model)));
      assert.equal(compiled.bytes, compiled.model.byteLength);
      fs.rmSync(written);
      const a = await Promise.all(cases.map((c) => project(onDisk.engine, ...request(onDisk, c))));
      const b = await Promise.all(cases.map((c) => project(inMemory.engine, ...request(inMemory, c))));
      a.forEach((r, i) => assert.deepEqual(r.projection, b[i].projection, `case ${cases[i].id}`));
    } finally {
      await onDisk.engine.close();
      await inMemory.engine.close();
    }
  });
});

describe('sessions released after SESSION_IDLE_S', () => {
  test('a graph nobody asks for is released; asked for again, it loads again and gives the same numbers', async () => {
    const c = manifest.cases.find((k) => k.model === 'zfnet' && k.seed === 'MAX')!;
    const s = await services('cpu', { SESSION_IDLE_S: '1' });
    try {
      const first = await project(s.engine, ...request(s, c));
      assert.equal(s.engine.sessionStats.keys.length, 1);
      const deadline = Date.now() + 5000;
      while (s.engine.sessionStats.keys.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(s.engine.sessionStats, { bytes: 0, keys: [] }, 'released after a second unused');
      assert.equal(s.engine.stats.idleReleases, 1);
      const again = await project(s.engine, ...request(s, c, undefined, 'again'));
      assert.deepEqual(again.projection, first.projection);
      assert.equal(s.engine.sessionStats.keys.length, 1, 'loaded again');
    } finally {
      await s.engine.close();
    }
  });
});

describe('the wasm backend gives the cpu numbers', () => {
  let cpu: Services;
  let wasm: Services;
  beforeAll(async () => {
    cpu = await services('cpu');
    wasm = await services('wasm');
  });
  afterAll(async () => {
    await cpu.engine.close();
    await wasm.engine.close();
  });

  // One case per model and method keeps the wasm run short.
  const picked = new Map<string, ReferenceCase>();
  for (const c of manifest.cases) if (!picked.has(`${c.model}/${c.method}`)) picked.set(`${c.model}/${c.method}`, c);
  for (const c of picked.values()) {
    test(`${c.id} (wasm)`, async () => {
      assert.equal(wasm.engine.runtime.backend, 'wasm');
      const [a, b] = await Promise.all([project(wasm.engine, ...request(wasm, c)), project(cpu.engine, ...request(cpu, c))]);
      assert.ok(relativeError(a.projection, b.projection) <= TOLERANCE, `wasm vs cpu: ${relativeError(a.projection, b.projection)}`);
      assertMatches(a.projection, c);
    });
  }
});
