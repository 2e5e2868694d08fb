import { Arg, Args, Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { filterActivation, filterWeights } from '../src/service/filters';
import { projectUnit } from '../src/service/projection';
import { visualizeUnit } from '../src/service/feature-visualization';
import { COST, costs } from './complexity';
import { FeatureVisualizationArgs, FeatureVisualizationType } from './feature-visualization';
import { ImageInput, resolveImage } from './image.resolver';
import { ActivationType, ProjectionArgs, ProjectionType } from './inference';
import { FilterType, FilterWeightsType, LayerType } from './types';

@Resolver(() => FilterType)
export class FilterResolver {
  @FieldResolver(() => LayerType)
  layer(@Root() root: FilterType): LayerType {
    return new LayerType(root.model, root.layer);
  }

  @FieldResolver(() => FilterWeightsType, {
    nullable: true,
    description: 'Null for layers without weights (ReLU, pooling, …).',
    complexity: costs(COST.render),
  })
  weights(@Root() root: FilterType, @Ctx() ctx: Context): Promise<FilterWeightsType | null> {
    return filterWeights(ctx.services, root);
  }

  @FieldResolver(() => ProjectionType, {
    description:
      "The deconvnet projection of this filter's activation on an image down to its pixels (ZF §2.1), or another backward rule. lrn defaults to GRADIENT for SALIENCY and IDENTITY otherwise.",
    complexity: costs(COST.projection),
  })
  async projection(
    @Root() root: FilterType,
    @Arg('image', () => ImageInput) imageInput: ImageInput,
    @Args() args: ProjectionArgs,
    @Ctx() ctx: Context,
  ): Promise<ProjectionType> {
    return new ProjectionType(await projectUnit(ctx, root, await resolveImage(ctx, imageInput), args));
  }

  @FieldResolver(() => ActivationType, { description: "This filter's feature map for an image.", complexity: costs(COST.activation) })
  async activation(@Root() root: FilterType, @Arg('image', () => ImageInput) imageInput: ImageInput, @Ctx() ctx: Context): Promise<ActivationType> {
    return filterActivation(ctx, root, await resolveImage(ctx, imageInput));
  }

  @FieldResolver(() => FeatureVisualizationType, {
    description:
      'An image that maximises this filter\'s channel mean (or one unit), optimised from noise as Lucid does (Olah et al., "Feature Visualization", Distill 2017). It runs while the query waits (512 steps: seconds on a small model; see the README), then is cached; for longer runs, startFeatureVisualization runs it as a job.',
    complexity: ({ args, childComplexity }) => COST.featureVisualizationStep * (args.steps ?? 512) * (args.batch ?? 1) + childComplexity,
  })
  async featureVisualization(@Root() root: FilterType, @Args() args: FeatureVisualizationArgs, @Ctx() ctx: Context): Promise<FeatureVisualizationType> {
    return new FeatureVisualizationType(await visualizeUnit(ctx.services, root, args), ctx.services);
  }
}
