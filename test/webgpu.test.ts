/**
 * The webgpu backend: onnxruntime-node's WebGPU provider (Dawn over Vulkan; in CI Mesa ≥ 25's
 * lavapipe, a Vulkan driver that runs on the CPU, installed by .ci/run). Every PyTorch reference
 * case, classic and modern, within 1e-4 of PyTorch, with ORT's CPU fallback disabled: each
 * projection graph runs wholly on the WebGPU provider (switches recomputed from the forward
 * values, as the provider has no MaxPool Indices). The families in NEEDS_CPU hold nodes that no
 * GPU provider runs; their cases that do must fail without the fallback, and then match
 * PyTorch with it, as the server runs them (fallback on by default).
 */
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { Engine } from '../src/engine/engine';
import { project } from '../src/engine/projections';
import { CPU_FALLBACK_REFUSED, openRuntime, Runtime } from '../src/engine/runtime';
import { log } from '../src/log';
import { ModelRegistry } from '../src/registry/models';
import { gql, startTestServer } from './helpers';
import { argmaxAbs, caseRequest, loadManifest, loadNpy, REFERENCE_SUITES, relativeError } from './reference';

const TOLERANCE = 1e-4;

/** Families with nodes only the CPU runs, and which. */
const NEEDS_CPU: Record<string, string> = {
  zfnet: 'LRN, which has no WebGPU kernel',
  lrn_decomposed: 'the int64 arithmetic of a reshape target computed from the batch size',
  shufflenet_v2: "the int64 arithmetic of the channel shuffle's reshape targets, computed from the batch size",
  vit: 'the int64 arithmetic of the class token and attention shapes, computed from the batch size',
  ops: 'LogSoftmax, which has no WebGPU kernel',
};

const suites = REFERENCE_SUITES.map((s) => ({ ...s, manifest: loadManifest(s.reference) }));

describe('webgpu: every PyTorch reference case, on the GPU provider alone', () => {
  let loader: Runtime;
  let strict: Engine;
  let withFallback: Engine;
  const registries = new Map<string, ModelRegistry>();
  beforeAll(async () => {
    log.level = 'silent';
    // Models load on a cpu runtime: the load-time probe outputs every shape value, int64
    // arithmetic included. The graphs under test are the projections.
    loader = await openRuntime('cpu', 2);
    for (const s of suites) registries.set(s.reference, await ModelRegistry.load(s.models, loader));
    strict = new Engine(await openRuntime('webgpu', 2, { cpuFallback: false }), { maxBatch: 16, windowMs: 1 });
    withFallback = new Engine(await openRuntime('webgpu', 2), { maxBatch: 16, windowMs: 1 });
  });
  afterAll(async () => {
    // One at a time: two WebGPU runtimes torn down at once crashed the process (a double free
    // in the provider's teardown), which a server, with one runtime, never does.
    for (const closable of [loader, strict, withFallback]) await closable?.close();
  });

  for (const { reference, manifest } of suites) {
    for (const c of manifest.cases) {
      test(c.id, async () => {
        const model = registries.get(reference)!.models.get(c.model)!;
        const request = caseRequest(c, manifest, reference);
        let result = await project(strict, model, request).catch((e: Error) => e);
        if (result instanceof Error) {
          assert.match(result.message, CPU_FALLBACK_REFUSED);
          assert.ok(NEEDS_CPU[c.model], `${c.model} needs the CPU: ${result.message}`);
          result = await project(withFallback, model, request);
        }
        const expected = loadNpy(c.expected, reference).data;
        const error = relativeError(result.projection, expected);
        assert.ok(error <= TOLERANCE, `relative error ${error.toExponential(2)} > ${TOLERANCE}`);
        assert.equal(argmaxAbs(result.projection), argmaxAbs(expected), 'position of the largest |value|');
      });
    }
  }
});

describe('webgpu: a server on it', () => {
  test('starts with every fixture model and says what it runs on', async () => {
    const server = await startTestServer({ CONVSCOPE_BACKEND: 'webgpu' });
    try {
      assert.deepEqual(server.services.registry.errors, []);
      const r = await gql(server.url, '{ backend { name device version } }');
      assert.equal(r.errors, undefined);
      assert.equal(r.data.backend.name, 'webgpu');
      assert.match(r.data.backend.version, /^onnxruntime-node \d+\.\d+\.\d+$/);
      assert.ok(r.data.backend.device.length > 0);
    } finally {
      await server.close();
    }
  });
});
