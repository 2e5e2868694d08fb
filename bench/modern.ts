/**
 * Benchmark (run by hand): projections from the last stage of ResNet-50 and EfficientNet-B0
 * (torchvision layouts, random weights) at batch 8, against the forward pass to the same layer
 * and against PyTorch 1.13 autograd doing the same projection with frozen weights.
 *   /usr/bin/python3 scripts/export_zoo.py /tmp/zoo resnet50 efficientnet_b0
 *   npm run build && node dist/bench/modern.js /tmp/zoo [resnet50 | efficientnet_b0]
 * Medians of raw ORT runs (2 threads) and of torch runs (2 threads), one run of each, same machine.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { createServices } from '../src/service/services';
import { projectionRuns } from './relu5';
import { REPEATS, timeIt, torchEnv, WARMUP } from './timing';

const TARGETS: Record<string, string> = {
  resnet50: '/layer4/layer4.2/relu_2/Relu',
  efficientnet_b0: '/features/features.8/features.8.2/Mul',
};
const BATCH = 8;

(async () => {
  const [zoo, ...only] = process.argv.slice(2);
  const models = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-modern-'));
  for (const name of Object.keys(TARGETS)) {
    fs.symlinkSync(path.resolve(zoo, `${name}.onnx`), path.join(models, `${name}.onnx`));
    fs.copyFileSync(path.join(zoo, `${name}.json`), path.join(models, `${name}.json`));
  }
  const s = await createServices(loadConfig({ MODELS_DIR: models, CACHE_DIR: path.join(models, 'cache'), LOG_LEVEL: 'warn', ORT_THREADS: '2' }));
  const torch = JSON.parse(
    execFileSync('/usr/bin/python3', [path.join(__dirname, '..', '..', 'bench', 'torch_modern.py'), String(BATCH), String(REPEATS), String(WARMUP)], {
      encoding: 'utf8',
      env: torchEnv(),
    })
      .trim()
      .split('\n')
      .pop()!,
  ) as Record<string, number>;
  console.log(`batch ${BATCH}, medians of ${REPEATS} runs after ${WARMUP}: ms per batch (images/s)`);
  console.log('model | target | forward | projection | projection/s ÷ (forward/s ÷ 2) | torch autograd | ÷ torch');
  for (const [name, target] of Object.entries(TARGETS).filter(([n]) => only.length === 0 || only.includes(n))) {
    const runs = await projectionRuns(s.engine, s.registry.models.get(name)!, target, BATCH);
    const forward = await timeIt(runs.forward);
    const projection = await timeIt(runs.projection);
    const rate = (ms: number) => (BATCH * 1000) / ms;
    console.log(
      `${name} | ${target} | ${forward.toFixed(1)} (${rate(forward).toFixed(1)}) | ${projection.toFixed(1)} (${rate(projection).toFixed(1)}) | ${(rate(projection) / (rate(forward) / 2)).toFixed(2)} | ${torch[name].toFixed(1)} (${rate(torch[name]).toFixed(1)}) | ${(torch[name] / projection).toFixed(2)}×`,
    );
  }
  await s.engine.close();
  fs.rmSync(models, { recursive: true, force: true });
})();
