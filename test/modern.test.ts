/**
 * Projections through today's architectures (EfficientNet, MobileNetV3, RegNetY, ConvNeXt,
 * ShuffleNetV2, MnasNet, ViT), small fixtures built with torchvision 0.14's own classes, against
 * PyTorch autograd with only the ReLU family's backward overridden (scripts/make_modern_fixtures.py).
 * Tolerance: max |ours − torch| ≤ 1e-4 · max |torch|, and the same position of the largest |value|.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config';
import { project } from '../src/engine/projections';
import { createServices, Services } from '../src/service/services';
import { argmaxAbs, loadManifest, loadNpy, MODERN, MODERN_REFERENCE, relativeError } from './reference';

const TOLERANCE = 1e-4;
const manifest = loadManifest(MODERN_REFERENCE);
const families = Object.keys(manifest.models);

describe('modern architectures: projections match PyTorch', () => {
  let s: Services;
  before(async () => {
    s = await createServices(loadConfig({ MODELS_DIR: path.join(MODERN, 'models'), CACHE_DIR: '/tmp/convscope-test-modern', LOG_LEVEL: 'silent' }));
  });
  after(() => s.engine.close());

  test('every family loads, with no model errors', () => {
    assert.deepEqual(s.registry.errors, []);
    assert.deepEqual([...s.registry.models.keys()].sort(), [...families].sort());
  });

  test('every family has every method × seed mode', () => {
    for (const family of families) {
      const cases = manifest.cases.filter((c) => c.model === family);
      const pairs = new Set(cases.map((c) => `${c.method}/${c.seed}`));
      assert.equal(pairs.size, 9, `${family}: ${[...pairs].join(', ')}`);
    }
  });

  for (const c of manifest.cases) {
    test(c.id, async () => {
      const model = s.registry.models.get(c.model)!;
      const input = loadNpy(manifest.models[c.model].input, MODERN_REFERENCE).data;
      const layer = model.layers.find((l) => l.tensor === c.targetOutput);
      assert.ok(layer, `${c.target} is served as a layer`);
      const result = await project(s.engine, model, {
        target: c.targetOutput,
        method: c.method,
        lrn: c.lrn,
        image: { key: c.model, data: input },
        channel: c.channel,
        seed: c.seed,
        position: c.position ?? undefined,
      });
      const expected = loadNpy(c.expected, MODERN_REFERENCE).data;
      const error = relativeError(result.projection, expected);
      assert.ok(error <= TOLERANCE, `relative error ${error.toExponential(2)} > ${TOLERANCE}`);
      assert.equal(argmaxAbs(result.projection), argmaxAbs(expected), 'position of the largest |value|');
      assert.ok(Math.abs(result.seedValue - c.seedValue) <= 1e-4 * Math.max(1, Math.abs(c.seedValue)), `seed value ${result.seedValue} vs ${c.seedValue}`);
      if (c.seedPosition) assert.deepEqual(result.position, c.seedPosition);
    });
  }
});
