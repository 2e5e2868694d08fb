/** Model.compare: two models (or snapshots) matched unit by unit (src/service/compare.ts). */
import { Arg, Args, Ctx, Field, FieldResolver, Float, Int, ObjectType, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { Comparison, compareModels, meanCorrelation, sweptActivations, UnitMatch } from '../src/service/compare';
import { findDataset, findModel } from '../src/service/lookup';
import { NoCache } from './cache-control';
import { COST, pageSize, perItem } from './complexity';
import { Connection, PageArgs, paginate } from './connection';
import { FilterType, LayerType, ModelType } from './types';
import { UnitActivationType } from './unit-analysis.resolver';

@NoCache()
@ObjectType('UnitMatch', { description: "A unit of the model and its best counterpart in the other: the other's unit of largest Pearson r." })
export class UnitMatchType {
  constructor(
    readonly comparison: Comparison,
    readonly unitMatch: UnitMatch,
  ) {}
  @Field(() => FilterType) get filter(): FilterType {
    return new FilterType(this.unitMatch.unit);
  }
  @Field(() => FilterType, {
    nullable: true,
    description: "The other model's unit whose activations correlate best with this one's (null: this unit is constant over the images).",
  })
  get match(): FilterType | null {
    return this.unitMatch.match && new FilterType(this.unitMatch.match);
  }
  @Field(() => Float, { nullable: true, description: "Pearson's r of the two units' spatially averaged activations over the images." }) get correlation():
    number | null {
    return this.unitMatch.correlation;
  }
  @Field(() => Int, { description: "How many of this unit's top-k images are among its match's top-k (k = ModelComparison.k)." }) get topOverlap(): number {
    return this.unitMatch.overlap;
  }
}

@Resolver(() => UnitMatchType)
export class UnitMatchResolver {
  @FieldResolver(() => [UnitActivationType], {
    description: "This unit's top-k images over the compared images (by spatial maximum, ties to the earlier image), strongest first; `first` of them.",
    complexity: ({ args, childComplexity }) => 1 + pageSize(args, 9) * childComplexity,
  })
  top(
    @Root() root: UnitMatchType,
    @Arg('first', () => Int, { nullable: true, description: 'Default: all k.' }) first: number | undefined,
    @Ctx() ctx: Context,
  ): UnitActivationType[] {
    const { unit, top } = root.unitMatch;
    return sweptActivations(ctx.services, root.comparison.dataset, unit, top, first ?? undefined).map((a) => new UnitActivationType(a));
  }

  @FieldResolver(() => [UnitActivationType], {
    description: "The match's top-k images, likewise (empty without a match).",
    complexity: ({ args, childComplexity }) => 1 + pageSize(args, 9) * childComplexity,
  })
  matchTop(
    @Root() root: UnitMatchType,
    @Arg('first', () => Int, { nullable: true, description: 'Default: all k.' }) first: number | undefined,
    @Ctx() ctx: Context,
  ): UnitActivationType[] {
    const { match, matchTop } = root.unitMatch;
    return match ? sweptActivations(ctx.services, root.comparison.dataset, match, matchTop, first ?? undefined).map((a) => new UnitActivationType(a)) : [];
  }
}

const UnitMatchConnection = Connection(UnitMatchType, 'UnitMatch');

@NoCache()
@ObjectType('ModelComparison', {
  description:
    "Two models' units of one layer matched by correlation over a dataset's first `images` images (name order). A unit's activation on an image is its feature map's mean over positions; units are matched to the other's unit of largest Pearson r (not one-to-one).",
})
export class ModelComparisonType {
  constructor(readonly comparison: Comparison) {}
  @Field(() => ModelType) get other(): ModelType {
    return new ModelType(this.comparison.other);
  }
  @Field(() => LayerType) get layer(): LayerType {
    return new LayerType(this.comparison.model, this.comparison.layer);
  }
  @Field() get dataset(): string {
    return this.comparison.dataset.name;
  }
  @Field(() => Int, { description: 'Images the correlations are over.' }) get images(): number {
    return this.comparison.images;
  }
  @Field(() => Int, { description: 'Size of the top sets whose overlap topOverlap counts.' }) get k(): number {
    return this.comparison.k;
  }
  @Field(() => Float, { nullable: true, description: "The mean of the matches' correlations (units with a match)." }) get meanCorrelation(): number | null {
    return meanCorrelation(this.comparison);
  }
}

@Resolver(() => ModelComparisonType)
export class ModelComparisonResolver {
  @FieldResolver(() => UnitMatchConnection, { description: 'Each unit of the layer with its match, by channel.', complexity: perItem() })
  units(@Root() root: ModelComparisonType, @Args() page: PageArgs, @Ctx() ctx: Context) {
    return paginate(
      root.comparison.matches.map((m) => new UnitMatchType(root.comparison, m)),
      page,
      ctx.services.config.maxPageSize,
    );
  }
}

@Resolver(() => ModelType)
export class CompareResolver {
  @NoCache()
  @FieldResolver(() => ModelComparisonType, {
    description:
      'Matches each unit of `layer` to its best counterpart in `other` (a training snapshot, or any model with that layer in the same shape) by the correlation of their activations over `dataset`. Errors: INCOMPATIBLE_MODELS for layers of different shapes; NOT_FOUND for an unknown model, layer or dataset; BAD_USER_INPUT for images or k out of range, or a layer of more units than MAX_COMPARE_UNITS.',
    complexity: ({ childComplexity }) => COST.compare + childComplexity,
  })
  async compare(
    @Root() root: ModelType,
    @Arg('other') otherName: string,
    @Arg('layer') layer: string,
    @Arg('dataset') datasetName: string,
    @Arg('images', () => Int, { nullable: true, description: "The dataset's first images, in name order; default: all, up to MAX_COMPARE_IMAGES." })
    images: number | undefined,
    @Arg('k', () => Int, { nullable: true, description: 'Size of the top sets (default 9).' }) k: number | undefined,
    @Ctx() ctx: Context,
  ): Promise<ModelComparisonType> {
    const other = findModel(ctx.services, otherName);
    const dataset = findDataset(ctx.services, datasetName);
    return new ModelComparisonType(await compareModels(ctx.services, root.model, other, layer, dataset, { images: images ?? undefined, k: k ?? undefined }));
  }
}
