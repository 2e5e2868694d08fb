import { Arg, Args, Ctx, FieldResolver, Int, Resolver, Root } from 'type-graphql';
import { encodeNpy } from '../src/cache/npy';
import { seedShape } from '../src/compiler/projection';
import { ENGINE_VERSION, modelCacheId } from '../src/cache/keys';
import { Context } from '../src/context';
import { channelStats, featureGridPng } from '../src/images/maps';
import { ImageInput, resolveImage } from './image.resolver';
import { FeatureMapsType } from './inference';
import { hasKernelImages, kernelGridPng } from '../src/images/filters';
import { layerWeights } from '../src/registry/weights';
import { PageArgs, paginate } from './connection';
import { checkFilterIndex } from './lookup';
import { FilterConnection, FilterType, LayerType, ModelType } from './types';
import { COST, costs, perItem } from './complexity';

@Resolver(() => LayerType)
export class LayerResolver {
  @FieldResolver(() => ModelType)
  model(@Root() root: LayerType): ModelType {
    return new ModelType(root.model);
  }

  @FieldResolver(() => [String], { description: 'Names of the layers whose outputs this layer reads (empty: it reads the image).' })
  inputs(@Root() root: LayerType): string[] {
    const graph = root.model.graph;
    return graph.dataInputs(root.layer.node).flatMap((t) => {
      const producer = graph.producer.get(t);
      return producer ? [producer.name] : [];
    });
  }

  @FieldResolver(() => FilterConnection, { complexity: perItem() })
  filters(@Root() root: LayerType, @Args() page: PageArgs, @Ctx() ctx: Context) {
    const count = root.layer.outputShape[0] ?? 0;
    const filters = Array.from({ length: count }, (_, i) => new FilterType(root.model, root.layer, i));
    return paginate(filters, page, ctx.services.config.maxPageSize);
  }

  @FieldResolver(() => FilterType)
  filter(@Root() root: LayerType, @Arg('index', () => Int) index: number): FilterType {
    return new FilterType(root.model, root.layer, checkFilterIndex(root.model, root.layer, index));
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: "All of the layer's kernels in one PNG (ZF Fig. 6), for convs that read the image.",
    complexity: costs(COST.render),
  })
  async filterGridUrl(@Root() root: LayerType, @Ctx() ctx: Context): Promise<string | null> {
    const weights = layerWeights(root.model, root.layer);
    if (!weights || !hasKernelImages(weights)) return null;
    const key = `kernel-grid/v1/${modelCacheId(root.model)}/${root.layer.name}`;
    return ctx.services.blobs.cached(key, 'png', () => kernelGridPng(root.model, weights));
  }

  @FieldResolver(() => FeatureMapsType, { description: "All of this layer's feature maps for an image.", complexity: costs(COST.featureMaps) })
  async featureMaps(@Root() root: LayerType, @Arg('image', () => ImageInput) imageInput: ImageInput, @Ctx() ctx: Context): Promise<FeatureMapsType> {
    const { model, layer } = root;
    const image = await resolveImage(ctx, imageInput);
    const data = await ctx.activations.load({ model, layer, image });
    const shape = seedShape(layer.outputShape);
    const key = `feature-maps/${ENGINE_VERSION}/${modelCacheId(model)}/${image.sha256}/${layer.name}`;
    const [gridUrl, tensorUrl] = await Promise.all([
      ctx.services.blobs.cached(`${key}/png`, 'png', () => featureGridPng(data, shape)),
      ctx.services.blobs.cached(`${key}/npy`, 'npy', () => encodeNpy(data, layer.outputShape)),
    ]);
    return { shape: layer.outputShape, channels: channelStats(data, shape[0]), gridUrl, tensorUrl };
  }
}
