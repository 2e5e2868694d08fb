/** Backend selection: unknown names are refused; a backend that cannot start says how to get it. */
import assert from 'node:assert/strict';
import { test } from '@jest/globals';
import { env, listSupportedBackends } from 'onnxruntime-node';
import { loadConfig } from '../src/config';
import { describeBackend, openRuntime, startupError } from '../src/engine/runtime';

test('CONVSCOPE_BACKEND must name a backend', () => {
  assert.throws(() => loadConfig({ CONVSCOPE_BACKEND: 'tpu' }), /cpu, wasm, cuda, webgpu/);
});

test('the CUDA backend, absent from this install, fails at start-up with the install command and what it needs', async () => {
  const cuda = listSupportedBackends().find((b) => b.name === 'cuda');
  assert.ok(cuda && cuda.bundled === false, 'the default install (onnxruntime-node-install=skip) has no CUDA provider');
  await assert.rejects(openRuntime('cuda', 2), (e: Error) => {
    for (const needed of [
      /ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/,
      /CUDA 12 runtime libraries/,
      /cuDNN 9/,
      /docker\/Dockerfile\.cuda/,
    ])
      assert.match(e.message, needed);
    return true;
  });
});

test('a CUDA provider that cannot load its libraries is reported with what is missing', () => {
  // onnxruntime's own message when the provider library is there but cuBLAS is not.
  const ort =
    'Failed to load library libonnxruntime_providers_cuda.so with error: libcublasLt.so.12: cannot open shared object file: No such file or directory';
  const e = startupError('cuda', ort);
  assert.match(e.message, /missing: the CUDA 12 runtime libraries\./);
  assert.ok(e.message.includes(ort), "keeps the runtime's own words");
  assert.match(startupError('cuda', 'libcudnn.so.9: cannot open shared object file').message, /missing: cuDNN 9\./);
  assert.match(startupError('cuda', 'libonnxruntime_providers_cuda.so: cannot open shared object file').message, /missing: onnxruntime-node's CUDA provider/);
  assert.match(startupError('cuda', 'CUDA failure 100: no CUDA-capable device is detected').message, /missing: an NVIDIA GPU/);
});

test('describeBackend names the backend, a device and the ONNX Runtime version', () => {
  const cpu = describeBackend('cpu');
  assert.equal(cpu.name, 'cpu');
  assert.match(cpu.device, /\(\d+ cores\)$/);
  assert.equal(cpu.version, `onnxruntime-node ${env.versions.node}`);
  assert.match(describeBackend('wasm').version, /^onnxruntime-web \d/);
});

test('the cpu and wasm backends start and pass their self-test', async () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    const runtime = await openRuntime(backend, 1);
    assert.equal(runtime.backend, backend);
  }
});
