import { Arg, Args, Ctx, FieldResolver, Int, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { featureMaps, filterGridUrl } from '../src/service/filters';
import { findUnit, layerUnits } from '../src/service/lookup';
import { COST, costs, perItem } from './complexity';
import { PageArgs, paginate } from './connection';
import { ImageInput, resolveImage } from './image.resolver';
import { FeatureMapsType } from './inference';
import { FilterConnection, FilterType, LayerType, ModelType } from './types';

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
    return paginate(
      layerUnits(root.model, root.layer).map((u) => new FilterType(u)),
      page,
      ctx.services.config.maxPageSize,
    );
  }

  @FieldResolver(() => FilterType)
  filter(@Root() root: LayerType, @Arg('index', () => Int) index: number): FilterType {
    return new FilterType(findUnit(root.model, root.layer, index));
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: "All of the layer's kernels in one PNG (ZF Fig. 6), for convs that read the image.",
    complexity: costs(COST.render),
  })
  filterGridUrl(@Root() root: LayerType, @Ctx() ctx: Context): Promise<string | null> {
    return filterGridUrl(ctx.services, root.model, root.layer);
  }

  @FieldResolver(() => FeatureMapsType, { description: "All of this layer's feature maps for an image.", complexity: costs(COST.featureMaps) })
  async featureMaps(@Root() root: LayerType, @Arg('image', () => ImageInput) imageInput: ImageInput, @Ctx() ctx: Context): Promise<FeatureMapsType> {
    return featureMaps(ctx, root.model, root.layer, await resolveImage(ctx, imageInput));
  }
}
