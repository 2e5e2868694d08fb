/** Backend selection: unknown names are refused; a backend that cannot start says how to get it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { listSupportedBackends } from 'onnxruntime-node';
import { loadConfig } from '../src/config';
import { openRuntime } from '../src/engine/runtime';

test('CONVSCOPE_BACKEND must name a backend', () => {
  assert.throws(() => loadConfig({ CONVSCOPE_BACKEND: 'tpu' }), /cpu, wasm, cuda, webgpu/);
});

test('the CUDA backend, absent from this install, fails at start-up with the install command', async () => {
  const cuda = listSupportedBackends().find((b) => b.name === 'cuda');
  assert.ok(cuda && cuda.bundled === false, 'the default install (onnxruntime-node-install=skip) has no CUDA provider');
  await assert.rejects(openRuntime('cuda', 2), /ONNXRUNTIME_NODE_INSTALL=cuda12 npm install/);
});

test('the cpu and wasm backends start and pass their self-test', async () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    const runtime = await openRuntime(backend, 1);
    assert.equal(runtime.backend, backend);
  }
});
