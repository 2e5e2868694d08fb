/** Reads the PyTorch reference fixtures (test/fixtures/reference, made by scripts/make_fixtures.py). */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { decodeNpy } from '../src/cache/npy';
import type { ProjectionItem } from '../src/engine/projections';
import type { LrnMode, Method, SeedMode } from '../src/vocabulary';
import { FIXTURE_MODELS, FIXTURES } from './paths';

export const REFERENCE = path.join(FIXTURES, 'reference');
/** The modern architectures' fixtures (scripts/make_modern_fixtures.py). */
export const MODERN = path.join(FIXTURES, 'modern');
export const MODERN_REFERENCE = path.join(MODERN, 'reference');
/** Every PyTorch reference suite: the folder of its models and of its cases. */
export const REFERENCE_SUITES = [
  { models: FIXTURE_MODELS, reference: REFERENCE },
  { models: path.join(MODERN, 'models'), reference: MODERN_REFERENCE },
];

export interface ReferenceCase {
  id: string;
  model: string;
  target: string;
  targetOutput: string;
  targetOp: string;
  channel: number;
  method: Method;
  seed: SeedMode;
  position: { y: number; x: number } | null;
  lrn: LrnMode;
  expected: string;
  expectedOverwrite?: string;
  seedValue: number;
  seedPosition: { y: number; x: number } | null;
}

export interface Manifest {
  models: Record<string, { input: string; logits: string; inputShape: number[] }>;
  cases: ReferenceCase[];
}

export function loadManifest(root = REFERENCE): Manifest {
  return JSON.parse(fs.readFileSync(path.join(root, 'manifest.json'), 'utf8'));
}

export function loadNpy(relative: string, root = REFERENCE) {
  return decodeNpy(fs.readFileSync(path.join(root, relative)));
}

/** The projection a reference case asks for: its unit, method and seed, on its model's input. */
export function caseRequest(c: ReferenceCase, manifest: Manifest, root = REFERENCE): ProjectionItem {
  const image = { key: c.model, data: loadNpy(manifest.models[c.model].input, root).data };
  return { target: c.targetOutput, method: c.method, lrn: c.lrn, image, channel: c.channel, seed: c.seed, position: c.position ?? undefined };
}

/** max |a − b| / max |b|: the tolerance measure of the reference tests. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

export function argmaxAbs(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (Math.abs(a[i]) > Math.abs(a[best])) best = i;
  return best;
}

/**
 * Asserts that a projection is its reference case's: max |ours − reference| ≤ tolerance · max
 * |reference|, the same position of the largest |value|, the same seed value and position.
 */
export function assertMatchesCase(
  result: { projection: Float32Array; seedValue: number; position?: { y: number; x: number } | null },
  c: ReferenceCase,
  root = REFERENCE,
  tolerance = 1e-4,
): void {
  const expected = loadNpy(c.expected, root).data;
  const error = relativeError(result.projection, expected);
  assert.ok(error <= tolerance, `relative error ${error.toExponential(2)} > ${tolerance}`);
  assert.equal(argmaxAbs(result.projection), argmaxAbs(expected), 'position of the largest |value|');
  assert.ok(Math.abs(result.seedValue - c.seedValue) <= 1e-4 * Math.max(1, Math.abs(c.seedValue)), `seed value ${result.seedValue} vs ${c.seedValue}`);
  if (c.seedPosition) assert.deepEqual(result.position, c.seedPosition);
}
