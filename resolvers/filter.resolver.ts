import { Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { hasKernelImages, kernelPng } from '../src/images/filters';
import { layerWeights } from '../src/registry/weights';
import { FilterType, FilterWeightsType, LayerType } from './types';

@Resolver(() => FilterType)
export class FilterResolver {
  @FieldResolver(() => LayerType)
  layer(@Root() root: FilterType): LayerType {
    return new LayerType(root.model, root.layer);
  }

  @FieldResolver(() => FilterWeightsType, { nullable: true, description: 'Null for layers without weights (ReLU, pooling, …).' })
  async weights(@Root() root: FilterType, @Ctx() ctx: Context): Promise<FilterWeightsType | null> {
    const weights = layerWeights(root.model, root.layer);
    if (!weights) return null;
    const w = weights.filter(root.index);
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let squares = 0;
    for (const v of w) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
      squares += v * v;
    }
    const key = `kernel/v1/${root.model.sha256}/${root.layer.name}/${root.index}`;
    const imageUrl = hasKernelImages(weights) ? await ctx.services.blobs.cached(key, 'png', () => kernelPng(root.model, weights, root.index)) : null;
    return { shape: weights.filterShape, min, max, mean: sum / w.length, l2: Math.sqrt(squares), imageUrl };
  }
}
