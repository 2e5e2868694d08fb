/** GraphQL types of computed results: projections, activations, feature maps. */
import { Arg, ArgsType, Ctx, Field, FieldResolver, Float, InputType, Int, ObjectType, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { Box } from '../src/images/maps';
import { PROJECTION_DEFAULTS, ProjectionRequest } from '../src/service/projection';
import { originalBox, Projection, projectionImageUrl, projectionTensorUrl } from '../src/service/views';
import type { LrnMode, Method, SeedMode } from '../src/vocabulary';
import { CacheFor, InheritMaxAge } from './cache-control';
import { Lrn, ProjectionMethod, Seed } from './enums';

@InputType({ description: 'A position in a feature map.' })
export class PositionInput {
  @Field(() => Int) y!: number;
  @Field(() => Int) x!: number;
}

@InheritMaxAge()
@ObjectType({ description: 'A position in a feature map.' })
export class Position {
  @Field(() => Int) y!: number;
  @Field(() => Int) x!: number;
}

@InheritMaxAge()
@ObjectType('Box', {
  description:
    "A rectangle of pixels, (x, y) its top-left corner, clipped to the image: the original image's pixels, or the model input's where the field says so.",
})
export class BoxType implements Box {
  @Field(() => Int) x!: number;
  @Field(() => Int) y!: number;
  @Field(() => Int) width!: number;
  @Field(() => Int) height!: number;
}

/** The arguments of every field that projects: a ProjectionRequest (src/service/projection.ts). */
@ArgsType()
export class ProjectionArgs implements ProjectionRequest {
  @Field(() => ProjectionMethod, { defaultValue: PROJECTION_DEFAULTS.method }) method!: Method;
  @Field(() => Seed, { defaultValue: PROJECTION_DEFAULTS.seed }) seed!: SeedMode;
  @Field(() => PositionInput, { nullable: true }) position?: PositionInput;
  @Field(() => Lrn, { nullable: true }) lrn?: LrnMode;
}

@CacheFor()
@ObjectType('Projection', { description: "A unit's activation projected down to the input pixels." })
export class ProjectionType {
  constructor(readonly projection: Projection) {}
  @Field(() => Float, { description: 'The activation sent down (for FULL_MAP: the map’s maximum).' }) get seedValue(): number {
    return this.projection.result.seedValue;
  }
  @Field(() => Position, { description: 'Where in the feature map the seed is (FULL_MAP: the maximum).' }) get position(): Position {
    return this.projection.result.position;
  }
  @Field(() => BoxType, {
    description: "The seed unit's receptive field in the model input's pixels (FULL_MAP: the whole map's): where the projection's pictures and tensor are.",
  })
  get inputBox(): Box {
    return this.projection.inputBox;
  }
  @Field(() => ProjectionMethod) get method(): Method {
    return this.projection.method;
  }
  @Field(() => Seed) get seed(): SeedMode {
    return this.projection.seed;
  }
  @Field(() => Lrn) get lrn(): LrnMode {
    return this.projection.lrn;
  }
}

@Resolver(() => ProjectionType)
export class ProjectionResolver {
  @FieldResolver(() => BoxType, { description: "inputBox in the original image's pixels (through the model's resize: stretch, centre crop or letterbox)." })
  box(@Root() root: ProjectionType, @Ctx() ctx: Context): Promise<Box> {
    const { unit, image, inputBox } = root.projection;
    return originalBox(ctx.services, unit.model, image, inputBox);
  }

  @FieldResolver(() => String, { description: 'PNG at the model input size: 0 at mid-grey, scaled by the largest |value|; `crop` cuts it to `inputBox`.' })
  imageUrl(@Root() root: ProjectionType, @Arg('crop', { defaultValue: PROJECTION_DEFAULTS.crop }) crop: boolean, @Ctx() ctx: Context): string {
    return projectionImageUrl(ctx.services, root.projection, crop);
  }

  @FieldResolver(() => String, { description: 'Raw float32 [C, H, W] as .npy, with respect to the preprocessed input tensor.' })
  tensorUrl(@Root() root: ProjectionType, @Ctx() ctx: Context): string {
    return projectionTensorUrl(ctx.services, root.projection);
  }
}

@CacheFor()
@ObjectType('Activation', { description: "One filter's feature map for an image." })
export class ActivationType {
  @Field(() => Float) max!: number;
  @Field(() => Float) min!: number;
  @Field(() => Float) mean!: number;
  @Field(() => Position, { description: 'The maximum’s position, first in raster order.' }) position!: Position;
  @Field({ description: 'PNG of the map, grey from min(0, min) to max.' }) mapUrl!: string;
}

@InheritMaxAge()
@ObjectType('ChannelStats')
export class ChannelStats {
  @Field(() => Int) index!: number;
  @Field(() => Float) min!: number;
  @Field(() => Float) max!: number;
  @Field(() => Float) mean!: number;
}

@CacheFor()
@ObjectType('FeatureMaps', { description: "All of a layer's feature maps for an image." })
export class FeatureMapsType {
  @Field(() => [Int], { description: '[C, H, W], or [F] for dense layers.' }) shape!: number[];
  @Field(() => [ChannelStats]) channels!: ChannelStats[];
  @Field({ description: 'PNG grid of every channel, each scaled to its own range.' }) gridUrl!: string;
  @Field({ description: 'Raw float32 activations as .npy.' }) tensorUrl!: string;
}
