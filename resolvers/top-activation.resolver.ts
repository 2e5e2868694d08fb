/** The top-k of each filter over a dataset (ZF Fig. 2), from a built index: its images, patches and projections. */
import { Arg, Args, Ctx, Field, FieldResolver, Float, Int, ObjectType, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { TopRow } from '../src/index/store';
import { SourceImage } from '../src/inference';
import { Dataset } from '../src/registry/datasets';
import { findDataset, layerUnits } from '../src/service/lookup';
import { projectUnit } from '../src/service/projection';
import { topActivationsGrid, topBox, topImage, topRows } from '../src/service/top-activations';
import { patchUrl } from '../src/service/views';
import { InheritMaxAge, NoCache } from './cache-control';
import { COST, costs, pageSize, perItem } from './complexity';
import { Connection, PageArgs, paginate } from './connection';
import { imageType, ImageType } from './image.resolver';
import { BoxType, Position, ProjectionArgs, ProjectionType } from './inference';
import { FilterType, LayerType } from './types';

@InheritMaxAge()
@ObjectType('TopActivation', { description: 'One of the images that excite a filter most (ZF Fig. 2).' })
export class TopActivationType {
  constructor(
    readonly unit: FilterType,
    readonly dataset: Dataset,
    readonly row: TopRow,
  ) {}
  private sourceImage?: SourceImage;
  /** The dataset image, read (and hashed) once however many fields need it. */
  source(ctx: Context): SourceImage {
    return (this.sourceImage ??= topImage(ctx.services, this.dataset, this.row));
  }
  @Field(() => Int, { description: '0 for the strongest.' }) get rank(): number {
    return this.row.rank;
  }
  @Field(() => Float, { description: "The filter's spatial maximum on this image." }) get value(): number {
    return this.row.value;
  }
  @Field(() => Position, { description: 'Where in the feature map.' }) get position(): Position {
    return { y: this.row.y, x: this.row.x };
  }
}

const TopActivationConnection = Connection(TopActivationType, 'TopActivation');

@Resolver(() => FilterType)
export class TopActivationsResolver {
  @NoCache() // read from the newest finished index
  @FieldResolver(() => TopActivationConnection, {
    description: 'The images of a dataset that excite this filter most (one per image, best first), from a built index.',
    complexity: perItem(9),
  })
  async topActivations(@Root() root: FilterType, @Arg('dataset') datasetName: string, @Args() page: PageArgs, @Ctx() ctx: Context) {
    const dataset = findDataset(ctx.services, datasetName);
    const rows = await topRows(ctx.services, root, dataset);
    return paginate(
      rows.map((r) => new TopActivationType(root, dataset, r)),
      { first: page.first ?? 9, after: page.after },
      ctx.services.config.maxPageSize,
    );
  }
}

@Resolver(() => TopActivationType)
export class TopActivationResolver {
  @FieldResolver(() => ImageType)
  image(@Root() root: TopActivationType, @Ctx() ctx: Context): Promise<ImageType> {
    return imageType(ctx, root.source(ctx));
  }

  @FieldResolver(() => BoxType, { description: "The unit's receptive field in the original image's pixels, clipped." })
  box(@Root() root: TopActivationType, @Ctx() ctx: Context): Promise<BoxType> {
    return topBox(ctx.services, root.unit, root.source(ctx), root.row);
  }

  @FieldResolver(() => String, { description: 'PNG of that box of the original image.' })
  async patchUrl(@Root() root: TopActivationType, @Ctx() ctx: Context): Promise<string> {
    const image = root.source(ctx);
    return patchUrl(ctx.services, image, await topBox(ctx.services, root.unit, image, root.row));
  }

  @FieldResolver(() => ProjectionType, {
    description: 'The projection of this activation (imageUrl(crop: true) cuts it to the receptive field).',
    complexity: costs(COST.projection),
  })
  async projection(@Root() root: TopActivationType, @Args() args: ProjectionArgs, @Ctx() ctx: Context): Promise<ProjectionType> {
    return new ProjectionType(await projectUnit(ctx, root.unit, root.source(ctx), args));
  }
}

@Resolver(() => LayerType)
export class TopActivationsGridResolver {
  @NoCache() // read from the newest finished index
  @FieldResolver(() => String, {
    description:
      "ZF Fig. 2 for a page of this layer's filters as one PNG: for each, its top-k projections (cropped to the receptive field) beside the image patches. Needs a built index.",
    complexity: ({ args, childComplexity }) => childComplexity + pageSize(args, 16) * (args.k ?? 9) * COST.projection,
  })
  topActivationsGrid(
    @Root() root: LayerType,
    @Arg('dataset') datasetName: string,
    @Args() page: PageArgs,
    @Arg('k', () => Int, { defaultValue: 9 }) k: number,
    @Ctx() ctx: Context,
  ): Promise<string> {
    const { model, layer } = root;
    const dataset = findDataset(ctx.services, datasetName);
    const units = paginate(layerUnits(model, layer), { first: page.first ?? 16, after: page.after }, ctx.services.config.maxPageSize).nodes;
    return topActivationsGrid(ctx, model, layer, dataset, units, k);
  }
}
