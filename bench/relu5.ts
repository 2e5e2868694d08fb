/**
 * The AlexNet relu5 measurement shared by bench/projection.ts and bench/device.ts: medians of
 * raw ORT runs of the forward graph to relu5 (or another target) and of the projection graph,
 * per batch size.
 */
import { compileForward, CompiledGraph } from '../src/compiler/forward';
import type { Unpool } from '../src/compiler/rules';
import { compileProjection, ITEM_INPUTS, seedShape } from '../src/compiler/projection';
import { Engine } from '../src/engine/engine';
import { unpoolFor } from '../src/engine/projections';
import type { Layer, Model } from '../src/model';
import { timeIt } from './timing';

export const TARGET = '/features/features.11/Relu';

export interface Row {
  batch: number;
  forward: number;
  projection: number;
}

function randomImages(n: number, [C, H, W]: number[]): Float32Array {
  const data = new Float32Array(n * C * H * W);
  let seed = 1;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    data[i] = seed / 2147483648 - 0.5;
  }
  return data;
}

/** The last ReLU with a map [C, H, W]: relu5 (TARGET) in AlexNet, layer4's last in ResNet-50. */
export function deepestRelu(model: Model): Layer {
  return model.layers.filter((l) => l.op === 'Relu' && l.outputShape.length === 3).pop()!;
}

/** Raw runs of the forward graph to relu5 and of the projection graph at batch n, on random images. */
export function relu5Runs(engine: Engine, model: Model, n: number): Promise<{ forward: () => Promise<unknown>; projection: () => Promise<unknown> }> {
  return projectionRuns(engine, model, TARGET, n);
}

/** Raw runs of the forward graph to a layer and of its DECONVNET projection graph (MAX seeds) at batch n, on random images. */
/** The DECONVNET projection graph of `layer` as the server compiles it for MAX seeds (on regions). */
export function deconvnetGraph(model: Model, layer: Layer, unpool?: Unpool): CompiledGraph {
  return compileProjection({
    graph: model.graph,
    shapes: model.shapes,
    target: layer.tensor,
    method: 'DECONVNET',
    lrn: 'IDENTITY',
    regions: true,
    forwardPerItem: model.forwardPerItem,
    unpool,
  });
}

export async function projectionRuns(
  engine: Engine,
  model: Model,
  target: string,
  n: number,
): Promise<{ forward: () => Promise<unknown>; projection: () => Promise<unknown> }> {
  const layer = model.layerByName.get(target)!;
  const { Tensor } = engine.runtime;
  const fwd = await engine.load(`bench-fwd/${target}`, () => compileForward(model.graph, [layer.tensor]));
  const proj = await engine.load(`bench-proj/${target}`, () => deconvnetGraph(model, layer, unpoolFor(engine.runtime.backend)));
  const [Ct, Ht, Wt] = seedShape(layer.outputShape);
  const input = new Tensor('float32', randomImages(n, model.inputShape), [n, ...model.inputShape]);
  const channels = new Float32Array(n * Ct);
  for (let i = 0; i < n; i++) channels[i * Ct + ((i * 37) % Ct)] = 1;
  const feeds = {
    [model.inputName]: input,
    [ITEM_INPUTS.image]: new Tensor(
      'int64',
      BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
      [n],
    ),
    [ITEM_INPUTS.channel]: new Tensor('float32', channels, [n, Ct]),
    [ITEM_INPUTS.mask]: new Tensor('float32', new Float32Array(n * Ht * Wt), [n, 1, Ht, Wt]),
    [ITEM_INPUTS.useMax]: new Tensor('float32', new Float32Array(n).fill(1), [n, 1, 1, 1]),
  };
  return { forward: () => fwd.session.run({ [model.inputName]: input }), projection: () => proj.session.run(feeds) };
}

export async function measure(engine: Engine, model: Model, batches: number[], target = TARGET): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of batches) {
    const runs = await projectionRuns(engine, model, target, n);
    rows.push({ batch: n, forward: await timeIt(runs.forward), projection: await timeIt(runs.projection) });
  }
  return rows;
}

export function report(label: string, rows: Row[]): void {
  console.log(`\n${label}`);
  console.log('batch | forward ms (img/s) | projection ms (img/s) | projection/s ÷ (forward/s ÷ 2)');
  for (const r of rows) {
    const f = (r.batch * 1000) / r.forward;
    const p = (r.batch * 1000) / r.projection;
    console.log(`${r.batch} | ${r.forward.toFixed(1)} (${f.toFixed(1)}) | ${r.projection.toFixed(1)} (${p.toFixed(1)}) | ${(p / (f / 2)).toFixed(2)}`);
  }
}
