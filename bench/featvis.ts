/**
 * Benchmark (run by hand): feature visualization of one AlexNet unit (torchvision layout, random
 * weights: the time does not depend on them), 512 steps at 224×224: the total time, the time
 * inside ONNX Runtime runs (the engine's run observer) and the share outside it, and, per step,
 * the TypeScript work alone (Fourier image and its adjoint, colour, transform and its adjoint).
 * On a shared machine wall times mostly measure the load (printed): the CPU seconds of the process
 * (all threads) and of the TypeScript work alone give the share outside ORT in CPU terms too.
 *   /usr/bin/python3 scripts/export_zoo.py /tmp/zoo alexnet
 *   npm run build && node dist/bench/featvis.js /tmp/zoo [layer] [steps] [runs]
 * Each run uses another seed (a result is cached: the same seed would not run again).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { toPixels, toPixelsAdjoint } from '../src/featvis/color';
import { FourierImage } from '../src/featvis/fourier';
import { Random } from '../src/featvis/random';
import { drawTransform, Resampling } from '../src/featvis/transforms';
import { visualizeUnit } from '../src/service/feature-visualization';
import { createServices } from '../src/service/services';
import { median } from './timing';

(async () => {
  const [zoo = '/tmp/zoo', layerName = '/features/features.11/Relu', stepsArg = '512', runsArg = '3'] = process.argv.slice(2);
  const steps = Number(stepsArg);
  const models = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-featvis-'));
  fs.symlinkSync(path.resolve(zoo, 'alexnet.onnx'), path.join(models, 'alexnet.onnx'));
  fs.copyFileSync(path.join(zoo, 'alexnet.json'), path.join(models, 'alexnet.json'));
  const s = await createServices(loadConfig({ MODELS_DIR: models, CACHE_DIR: path.join(models, 'cache'), LOG_LEVEL: 'warn' }));
  const model = s.registry.models.get('alexnet')!;
  const layer = model.layers.find((l) => l.name === layerName);
  if (!layer) throw new Error(`no layer ${layerName}: ${model.layers.map((l) => l.name).join(', ')}`);
  let ortSeconds = 0;
  s.engine.observers.push({ run: (_items, seconds) => (ortSeconds += seconds) });

  // Warm-up: the session loads and ORT plans its memory.
  await visualizeUnit(s, { model, layer, index: 0 }, { steps: 8, seed: 1000 });
  const totals: number[] = [];
  const shares: number[] = [];
  const cpus: number[] = [];
  for (let run = 0; run < Number(runsArg); run++) {
    ortSeconds = 0;
    const t = performance.now();
    const cpu = process.cpuUsage();
    const fv = await visualizeUnit(s, { model, layer, index: 0 }, { steps, seed: run });
    const total = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    cpus.push((used.user + used.system) / 1e6);
    totals.push(total);
    shares.push(1 - ortSeconds / total);
    console.log(
      `run ${run}: ${total.toFixed(1)} s, in ORT ${ortSeconds.toFixed(1)} s, outside ${(100 * (1 - ortSeconds / total)).toFixed(1)} %, value ${fv.result.values[0].toFixed(3)}, CPU ${cpus[run].toFixed(1)} s, load average ${os.loadavg()[0].toFixed(1)}`,
    );
  }

  // The TypeScript work of one step at 224 px, alone.
  const S = 224;
  const fourier = new FourierImage(S, S);
  const random = new Random(0);
  const spectrum = Float64Array.from({ length: 3 * fourier.coefficients }, () => random.normal(0.01));
  const [t, pixels, sampled, g, gT, gSpec] = [3 * S * S, 3 * S * S, 3 * S * S, 3 * S * S, 3 * S * S, 3 * fourier.coefficients].map((n) => new Float64Array(n));
  const perStep: number[] = [];
  const perStepCpu: number[] = [];
  const r = new Resampling(S, S, S, drawTransform(random, S));
  for (let i = 0; i < 40; i++) {
    const start = performance.now();
    const cpu = process.cpuUsage();
    for (let c = 0; c < 3; c++) fourier.image(spectrum, c * fourier.coefficients, t, c * S * S);
    toPixels(t, 3, pixels);
    r.set(drawTransform(random, S));
    r.sample(pixels, 3, sampled);
    r.sampleAdjoint(sampled, 3, g);
    toPixelsAdjoint(g, pixels, 3, gT);
    for (let c = 0; c < 3; c++) fourier.adjoint(gT, c * S * S, gSpec, c * fourier.coefficients);
    const used = process.cpuUsage(cpu);
    if (i >= 10) {
      perStep.push(performance.now() - start);
      perStepCpu.push((used.user + used.system) / 1000);
    }
  }
  const tsCpu = (median(perStepCpu) * (steps + 1)) / 1000;
  console.log(
    `AlexNet ${layerName} channel 0, ${steps} steps at ${S} px, ${totals.length} runs: total median ${median(totals).toFixed(1)} s (${Math.min(...totals).toFixed(1)}–${Math.max(...totals).toFixed(1)}), ` +
      `outside ORT median ${(100 * median(shares)).toFixed(1)} % (${(100 * Math.min(...shares)).toFixed(1)}–${(100 * Math.max(...shares)).toFixed(1)}); ` +
      `TypeScript per step alone: median ${median(perStep).toFixed(2)} ms wall (${Math.min(...perStep).toFixed(2)}–${Math.max(...perStep).toFixed(2)}), ${median(perStepCpu).toFixed(2)} ms CPU; ` +
      `CPU: process median ${median(cpus).toFixed(1)} s, of which TypeScript ≈ ${tsCpu.toFixed(1)} s (${((100 * tsCpu) / median(cpus)).toFixed(1)} %)`,
  );
  await s.engine.close();
  fs.rmSync(models, { recursive: true, force: true });
})();
