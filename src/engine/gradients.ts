/**
 * Gradients of a unit to the input, for feature visualization: the SALIENCY projection graph
 * (compiler/projection.ts) with the signal at the target given per item (`givenSeed`), so one
 * run gives, for each item's image x and seed s, ∇ₓ⟨s, activation(x)⟩ and the activation itself.
 * Concurrent items (a batch of images being optimised, other requests' steps) share runs.
 */
import { compileProjection, ITEM_INPUTS } from '../compiler/projection';
import { seedShape } from '../compiler/units';
import { Engine, graphKey, PreparedImage, split } from './engine';
import { ProjectableModel, unpoolFor } from './projections';

export interface GradientItem {
  /** The target activation tensor. */
  target: string;
  /** The image as the model takes it, [C, H, W]; its key must be unique to its content. */
  image: PreparedImage;
  /** The signal at the target, as its unit grid [Ct·Ht·Wt] (the weights of the objective's units). */
  seed: Float32Array;
}

export interface GradientResult {
  /** ∇ₓ⟨seed, activation⟩, [C, H, W]. */
  gradient: Float32Array;
  /** The target's activation as its unit grid [Ct·Ht·Wt]. */
  activation: Float32Array;
}

export function inputGradient(engine: Engine, model: ProjectableModel, item: GradientItem): Promise<GradientResult> {
  const unpool = unpoolFor(engine.runtime.backend);
  const key = graphKey(model, `gradient/${item.target}/${unpool ?? ''}`);
  const compile = () =>
    compileProjection({
      graph: model.graph,
      shapes: model.shapes,
      target: item.target,
      method: 'SALIENCY',
      lrn: 'GRADIENT',
      unpool,
      givenSeed: true,
      forwardPerItem: model.forwardPerItem,
    });
  const [Ct, Ht, Wt] = seedShape(model.shapes.get(item.target)!);
  return engine
    .batcher<GradientItem, GradientResult>(key, model.maxBatch, async (items) => {
      const loaded = await engine.load(key, compile);
      const { Tensor } = engine.runtime;
      const N = items.length;
      const seeds = new Float32Array(N * Ct * Ht * Wt);
      items.forEach((it, n) => seeds.set(it.seed, n * Ct * Ht * Wt));
      const out = await engine.run(
        loaded,
        {
          [model.inputName]: engine.stack(
            model,
            items.map((it) => it.image),
          ),
          [ITEM_INPUTS.image]: new Tensor(
            'int64',
            BigInt64Array.from(items, (_, n) => BigInt(n)),
            [N],
          ),
          [ITEM_INPUTS.seed]: new Tensor('float32', seeds, [N, Ct, Ht, Wt]),
        },
        N,
      );
      const [gradientName, activationName] = loaded.outputs;
      const gradients = split(out[gradientName], N);
      const activations = split(out[activationName], N);
      return items.map((_, n) => ({ gradient: gradients[n], activation: activations[n] }));
    })
    .submit(item);
}
