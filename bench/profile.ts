/**
 * Where a projection's time goes (run by hand): ONNX Runtime's profiler over the projection
 * graph of one layer at batch 8 (DECONVNET, MAX seeds, random images), time per op type.
 *   npm run build && [NODES=n] node dist/bench/profile.js MODELS_DIR MODEL LAYER [runs] [items] [items per image]
 * (NODES=n: the n slowest nodes too)
 * (an atlas's runs: 64 items, about 8 per image)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadConfig } from '../src/config';
import { ITEM_INPUTS, seedShape } from '../src/compiler/projection';
import { createServices } from '../src/service/services';
import { deconvnetGraph } from './relu5';

const [dir, name, layerName, runsArg, itemsArg, perImageArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 3);
const N = Number(itemsArg ?? 8);
const perImage = Number(perImageArg ?? 1);
const B = Math.ceil(N / perImage);

(async () => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-profile-'));
  const s = await createServices(loadConfig({ MODELS_DIR: dir, CACHE_DIR: cacheDir, LOG_LEVEL: 'silent' }));
  const model = s.registry.models.get(name)!;
  const layer = model.layerByName.get(layerName)!;
  const graph = deconvnetGraph(model, layer);
  const prefix = path.join(os.tmpdir(), `convscope-profile-${process.pid}`);
  const session = await ort.InferenceSession.create(graph.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 2,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: false,
    enableProfiling: true,
    profileFilePrefix: prefix,
  });
  const [Ct, Ht, Wt] = seedShape(layer.outputShape);
  const channels = new Float32Array(N * Ct);
  for (let i = 0; i < N; i++) channels[i * Ct + ((i * 37) % Ct)] = 1;
  const size = model.inputShape.reduce((a, b) => a * b, 1);
  const feeds = {
    [model.inputName]: new ort.Tensor(
      'float32',
      Float32Array.from({ length: B * size }, (_, i) => Math.sin(i * 12.9898)),
      [B, ...model.inputShape],
    ),
    [ITEM_INPUTS.image]: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: N }, (_, i) => BigInt(Math.floor(i / perImage))),
      [N],
    ),
    [ITEM_INPUTS.channel]: new ort.Tensor('float32', channels, [N, Ct]),
    [ITEM_INPUTS.mask]: new ort.Tensor('float32', new Float32Array(N * Ht * Wt), [N, 1, Ht, Wt]),
    [ITEM_INPUTS.useMax]: new ort.Tensor('float32', new Float32Array(N).fill(1), [N, 1, 1, 1]),
  };
  for (let i = 0; i < runs; i++) await session.run(feeds);
  session.endProfiling();
  await session.release(); // the profile file is complete once the session is gone
  const file = fs
    .readdirSync(os.tmpdir())
    .filter((f) => f.startsWith(path.basename(prefix)))
    .map((f) => path.join(os.tmpdir(), f))[0];
  const events = JSON.parse(fs.readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args: { op_name?: string } }[];
  fs.rmSync(file);
  const byOp = new Map<string, number>();
  const byNode = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    byOp.set(e.args.op_name!, (byOp.get(e.args.op_name!) ?? 0) + e.dur);
    const node = `${e.args.op_name} ${e.name.slice(0, -'_kernel_time'.length)}`;
    byNode.set(node, (byNode.get(node) ?? 0) + e.dur);
  }
  const total = [...byOp.values()].reduce((a, b) => a + b, 0);
  console.log(`${name} ${layerName}, batch ${N} over ${B} images: ${(total / runs / 1000).toFixed(0)} ms of kernels per run`);
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 12))
    console.log(`  ${op} ${((100 * us) / total).toFixed(1)}% (${(us / runs / 1000).toFixed(0)} ms)`);
  // NODES=n: the n slowest nodes too
  for (const [node, us] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.NODES ?? 0)))
    console.log(`    ${node} ${(us / runs / 1000).toFixed(1)} ms`);
  await s.engine.close();
  fs.rmSync(cacheDir, { recursive: true, force: true }); // the weights of every model in the folder
})();
