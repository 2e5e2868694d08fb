/**
 * What a unit responds to: its class selectivity (from the index), a layer's units ordered by it,
 * and the reverse question, the units of a layer that fire most for an image. The work is in
 * src/service/selectivity.ts and src/service/top-units.ts.
 */
import { Arg, Args, Ctx, Field, FieldResolver, Float, Int, ObjectType, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { findDataset, findLayer } from '../src/service/lookup';
import { projectUnit } from '../src/service/projection';
import { orderedUnits, Selectivity, unitSelectivity } from '../src/service/selectivity';
import { topUnits, UnitActivation } from '../src/service/top-units';
import type { UnitOrder } from '../src/vocabulary';
import { CacheFor, InheritMaxAge, NoCache } from './cache-control';
import { COST, costs, pageSize, perItem } from './complexity';
import { PageArgs, paginate } from './connection';
import { UnitOrderEnum } from './enums';
import { ImageInput, imageType, ImageType, resolveImage } from './image.resolver';
import { Position, ProjectionArgs, ProjectionType } from './inference';
import { FilterConnection, FilterType, LayerType, ModelType } from './types';

@InheritMaxAge()
@ObjectType('LabelCount')
export class LabelCountType {
  @Field() label!: string;
  @Field(() => Int) count!: number;
}

@InheritMaxAge()
@ObjectType('Selectivity', { description: "A unit's class selectivity: the labels of its top-k images over a dataset, from the index." })
export class SelectivityType implements Selectivity {
  @Field(() => Int, { description: 'Top images read from the index (its k).' }) images!: number;
  @Field(() => Int, { description: 'Of those, the ones with a label in the dataset’s labels.json: share and entropy are over these.' }) labelled!: number;
  @Field(() => String, { nullable: true, description: 'The most frequent label (on equal counts, the one of the stronger image); null when none is labelled.' })
  label!: string | null;
  @Field(() => Int, { description: 'How many of the labelled top images have `label`.' }) count!: number;
  @Field(() => Float, { description: 'count / labelled: 1 for a unit whose top images are all of one class.' }) share!: number;
  @Field(() => Float, { description: 'Shannon entropy of the labels in bits (log base 2): 0 when all agree, log2(n) for n equally frequent labels.' })
  entropy!: number;
  @Field(() => [LabelCountType], { description: 'Every label with its count, most frequent first.' }) labels!: LabelCountType[];
}

@CacheFor()
@ObjectType('UnitActivation', { description: "A unit's strongest activation on an image: its feature map's maximum over positions (first in raster order)." })
export class UnitActivationType {
  constructor(readonly activation: UnitActivation) {}
  @Field(() => FilterType) get filter(): FilterType {
    return new FilterType(this.activation.unit);
  }
  @Field(() => Float) get value(): number {
    return this.activation.value;
  }
  @Field(() => Position, { description: 'Where in the feature map.' }) get position(): Position {
    return this.activation.position;
  }
}

@Resolver(() => UnitActivationType)
export class UnitActivationResolver {
  @FieldResolver(() => ImageType)
  image(@Root() root: UnitActivationType, @Ctx() ctx: Context): Promise<ImageType> {
    return imageType(ctx, root.activation.image);
  }

  @FieldResolver(() => ProjectionType, {
    description: "The projection of this unit on the image (the default seed MAX is this activation's position).",
    complexity: costs(COST.projection),
  })
  async projection(@Root() root: UnitActivationType, @Args() args: ProjectionArgs, @Ctx() ctx: Context): Promise<ProjectionType> {
    return new ProjectionType(await projectUnit(ctx, root.activation.unit, root.activation.image, args));
  }
}

@Resolver(() => FilterType)
export class SelectivityResolver {
  @NoCache() // read from the newest finished index
  @FieldResolver(() => SelectivityType, {
    description: 'The class selectivity of this filter over a dataset: the labels of its top-k images, from a built index (INDEX_NOT_BUILT otherwise).',
  })
  selectivity(@Root() root: FilterType, @Arg('dataset') datasetName: string, @Ctx() ctx: Context): Promise<Selectivity> {
    return unitSelectivity(ctx.services, root, findDataset(ctx.services, datasetName));
  }
}

@Resolver(() => LayerType)
export class LayerUnitsResolver {
  @NoCache() // SELECTIVITY reads the newest finished index
  @FieldResolver(() => FilterConnection, {
    description: "The layer's units (filters) in the order asked: by index, or most class-selective first over `dataset` (needs its index).",
    complexity: perItem(),
  })
  async units(
    @Root() root: LayerType,
    @Arg('orderBy', () => UnitOrderEnum, { defaultValue: 'INDEX' }) orderBy: UnitOrder,
    @Arg('dataset', () => String, { nullable: true, description: 'Needed by orderBy: SELECTIVITY.' }) datasetName: string | undefined,
    @Args() page: PageArgs,
    @Ctx() ctx: Context,
  ) {
    const dataset = datasetName == null ? undefined : findDataset(ctx.services, datasetName);
    const units = await orderedUnits(ctx.services, root.model, root.layer, orderBy, dataset);
    return paginate(
      units.map((u) => new FilterType(u)),
      page,
      ctx.services.config.maxPageSize,
    );
  }
}

@Resolver(() => ModelType)
export class TopUnitsResolver {
  @FieldResolver(() => [UnitActivationType], {
    description:
      'The units of `layer` that fire most for an image: ranked by each feature map’s maximum over positions (the value the top-k index ranks images by), strongest first, ties to the lower channel.',
    complexity: ({ args, childComplexity }) => COST.activation + pageSize(args, 10) * childComplexity,
  })
  async topUnits(
    @Root() root: ModelType,
    @Arg('image', () => ImageInput) imageInput: ImageInput,
    @Arg('layer') layerName: string,
    @Arg('first', () => Int, { defaultValue: 10, description: 'How many (1 to the server’s MAX_PAGE_SIZE; more than the layer’s units gives them all).' })
    first: number,
    @Ctx() ctx: Context,
  ): Promise<UnitActivationType[]> {
    const layer = findLayer(root.model, layerName);
    const ranked = await topUnits(ctx, root.model, layer, await resolveImage(ctx, imageInput), first);
    return ranked.map((a) => new UnitActivationType(a));
  }
}
