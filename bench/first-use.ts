/**
 * Benchmark (run by hand): how long the first projection of a new (layer, method) takes on a
 * big model — compiling its graph and creating its ONNX Runtime session — and after a restart,
 * when the graph comes from CACHE_DIR/graphs.
 *   /usr/bin/python3 scripts/export_zoo.py /tmp/zoo resnet50 efficientnet_b0
 *   npm run build && node dist/bench/first-use.js /tmp/zoo/resnet50.onnx [layer …]
 * Default layers: the last ReLU of the last stage (4-D) and the logits. Prints, per layer and
 * method, the first query's time cold and after a restart, and a second query's (warm) time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { Method } from '../src/compiler/rules';
import { project } from '../src/engine/projections';
import { createServices } from '../src/service/services';
import { firstUnitRequest, syntheticInput } from './synthetic';

const [file, ...names] = process.argv.slice(2);
const METHODS: Method[] = ['DECONVNET', 'SALIENCY'];

(async () => {
  const models = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-first-'));
  const name = path.basename(file, '.onnx');
  fs.symlinkSync(path.resolve(file), path.join(models, `${name}.onnx`));
  const sidecar = file.replace(/\.onnx$/, '.json');
  if (fs.existsSync(sidecar)) fs.copyFileSync(sidecar, path.join(models, `${name}.json`));
  const env = { MODELS_DIR: models, CACHE_DIR: path.join(models, 'cache'), LOG_LEVEL: 'silent' };
  const rows: Record<string, number[]> = {};
  for (const run of ['cold', 'restart']) {
    const s = await createServices(loadConfig(env));
    const model = s.registry.models.get(name)!;
    const layers = names.length
      ? names.map((n) => model.layerByName.get(n)!)
      : [
          [...model.layers].reverse().find((l) => l.op === 'Relu' && l.outputShape.length === 3) ?? model.layers[model.layers.length - 3],
          model.layers[model.layers.length - 1],
        ];
    const image = syntheticInput(model, 'x');
    for (const layer of layers) {
      for (const method of METHODS) {
        const req = firstUnitRequest(model, layer, method, image);
        const t0 = performance.now();
        await project(s.engine, model, req);
        const t1 = performance.now();
        await project(s.engine, model, { ...req, channel: 1 });
        const t2 = performance.now();
        const row = (rows[`${layer.name} ${method}`] ??= []);
        row.push(t1 - t0);
        if (run === 'restart') row.push(t2 - t1);
      }
    }
    await s.engine.close();
  }
  console.log(`${name}: first projection of a (layer, method), ms — cold (compile + session) | after a restart (graph from disk) | a second unit (warm)`);
  for (const [what, [cold, restart, warm]] of Object.entries(rows)) console.log(`  ${what}: ${cold.toFixed(0)} | ${restart.toFixed(0)} | ${warm.toFixed(0)}`);
  fs.rmSync(models, { recursive: true, force: true });
})();
