/** GraphQL types of computed results: projections, activations, feature maps. */
import { Ctx, Field, FieldResolver, Float, InputType, Int, ObjectType, registerEnumType, Resolver, Root, Arg } from 'type-graphql';
import { LrnMode, Method } from '../src/compiler/rules';
import { Context } from '../src/context';
import { encodeNpy } from '../src/cache/npy';
import { ProjectionResult, SeedMode } from '../src/engine/projections';
import { Box, projectionPng } from '../src/images/maps';
import { toOriginal } from '../src/images/placement';
import { inspectImage } from '../src/images/preprocess';
import { SourceImage } from '../src/inference';
import type { Layer, Model } from '../src/model';
import { CacheFor, InheritMaxAge } from './cache-control';

export enum ProjectionMethod {
  DECONVNET = 'DECONVNET',
  GUIDED_BACKPROP = 'GUIDED_BACKPROP',
  SALIENCY = 'SALIENCY',
}
export enum Seed {
  MAX = 'MAX',
  POSITION = 'POSITION',
  FULL_MAP = 'FULL_MAP',
}
export enum Lrn {
  IDENTITY = 'IDENTITY',
  GRADIENT = 'GRADIENT',
}
registerEnumType(ProjectionMethod, {
  name: 'ProjectionMethod',
  description: 'The top-down rule at ReLUs.',
  valuesConfig: {
    DECONVNET: { description: 'Zeiler & Fergus: relu of the signal from above, ignoring the forward activation.' },
    GUIDED_BACKPROP: { description: 'Springenberg et al.: relu of the signal, and only where the forward input was positive.' },
    SALIENCY: { description: 'Simonyan et al.: the plain gradient.' },
  },
});
registerEnumType(Seed, {
  name: 'SeedMode',
  description: 'Which activations of the filter’s map are sent down.',
  valuesConfig: {
    MAX: { description: 'The strongest (first in raster order on ties).' },
    POSITION: { description: 'The one at `position`.' },
    FULL_MAP: { description: 'The whole map.' },
  },
});
registerEnumType(Lrn, {
  name: 'LrnMode',
  description: 'How local response normalisation is crossed going down.',
  valuesConfig: {
    IDENTITY: { description: 'As identity (the paper is silent; the common choice).' },
    GRADIENT: { description: 'Its true gradient.' },
  },
});

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
@ObjectType('Box', { description: "A rectangle of pixels, (x, y) its top-left corner, clipped to the image: the original image's pixels, or the model input's where the field says so." })
export class BoxType implements Box {
  @Field(() => Int) x!: number;
  @Field(() => Int) y!: number;
  @Field(() => Int) width!: number;
  @Field(() => Int) height!: number;
}

/** A computed tensor with what is needed to name its blobs. */
export interface Computed {
  model: Model;
  layer: Layer;
  /** Identifies the computation (model, image, unit, options): the blob cache key. */
  key: string;
}

@CacheFor()
@ObjectType('Projection', { description: "A unit's activation projected down to the input pixels." })
export class ProjectionType {
  constructor(
    readonly computed: Computed,
    readonly image: SourceImage,
    readonly result: ProjectionResult,
    inputBox: Box,
    options: { method: Method; seed: SeedMode; lrn: LrnMode },
  ) {
    this.seedValue = result.seedValue;
    this.position = result.position;
    this.inputBox = inputBox;
    Object.assign(this, options);
  }
  @Field(() => Float, { description: 'The activation sent down (for FULL_MAP: the map’s maximum).' }) seedValue: number;
  @Field(() => Position, { description: 'Where in the feature map the seed is (FULL_MAP: the maximum).' }) position: Position;
  @Field(() => BoxType, { description: "The seed unit's receptive field in the model input's pixels (FULL_MAP: the whole map's): where the projection's pictures and tensor are." })
  inputBox: Box;
  @Field(() => ProjectionMethod) method!: ProjectionMethod;
  @Field(() => Seed) seed!: Seed;
  @Field(() => Lrn) lrn!: Lrn;
}

@Resolver(() => ProjectionType)
export class ProjectionResolver {
  @FieldResolver(() => BoxType, { description: "inputBox in the original image's pixels (through the model's resize: stretch, centre crop or letterbox)." })
  async box(@Root() root: ProjectionType, @Ctx() ctx: Context): Promise<Box> {
    return toOriginal(root.inputBox, await inspectImage(root.image.bytes, ctx.services.config), root.computed.model.preprocessing);
  }

  @FieldResolver(() => String, { description: 'PNG at the model input size: 0 at mid-grey, scaled by the largest |value|; `crop` cuts it to `inputBox`.' })
  imageUrl(@Root() root: ProjectionType, @Arg('crop', { defaultValue: false }) crop: boolean, @Ctx() ctx: Context): Promise<string> {
    const { model } = root.computed;
    return ctx.services.blobs.cached(`${root.computed.key}/png/${crop}`, 'png', () =>
      projectionPng(root.result.projection, model.preprocessing, crop ? root.inputBox : undefined),
    );
  }

  @FieldResolver(() => String, { description: 'Raw float32 [C, H, W] as .npy, with respect to the preprocessed input tensor.' })
  tensorUrl(@Root() root: ProjectionType, @Ctx() ctx: Context): Promise<string> {
    return ctx.services.blobs.cached(`${root.computed.key}/npy`, 'npy', () => encodeNpy(root.result.projection, root.computed.model.inputShape));
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
