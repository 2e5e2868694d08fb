/**
 * Predictions and occlusion sensitivity (ZF §4.2, Fig. 7) as fields of Model, and their types.
 * The work is in src/service/occlusion.ts (defaults, checks), src/inference.ts (result cache)
 * and src/engine/occlusion.ts (the grid).
 */
import { Arg, Ctx, Field, FieldResolver, Float, Int, ObjectType, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { classLabel, occlusion, occlusionMaps, predict, topClasses } from '../src/service/occlusion';
import { projectUnit } from '../src/service/projection';
import { Occlusion, OcclusionMap, occlusionMapImageUrl, occlusionMapTensorUrl } from '../src/service/views';
import type { FillMode } from '../src/vocabulary';
import { CacheFor, InheritMaxAge } from './cache-control';
import { COST, costs } from './complexity';
import { OcclusionFill } from './enums';
import { ImageInput, resolveImage } from './image.resolver';
import { ProjectionType } from './inference';
import { FilterType, ModelType } from './types';

@CacheFor()
@ObjectType('Prediction', { description: 'A class and its probability.' })
export class PredictionType {
  @Field(() => Int) classIndex!: number;
  @Field({ description: 'From the sidecar’s labels (or "class i").' }) label!: string;
  @Field(() => Float, { description: 'Softmax of the logits, or the model’s output if it ends in a Softmax.' }) probability!: number;
}

@InheritMaxAge()
@ObjectType('OcclusionMap', { description: 'One value per occluder position: a [height, width] grid.' })
export class OcclusionMapType {
  constructor(readonly map: OcclusionMap) {}
  @Field(() => Float) get min(): number {
    return this.map.min;
  }
  @Field(() => Float) get max(): number {
    return this.map.max;
  }
}

@InheritMaxAge()
@ObjectType('OcclusionFeatureMap', { description: 'The feature map occlusion follows: the layer’s strongest on the unoccluded image.' })
export class OcclusionFeatureMapType {
  constructor(readonly occlusion: Occlusion) {}
  @Field({ description: 'The layer’s name.' }) get layer(): string {
    return this.occlusion.layer.name;
  }
  @Field(() => Int, { description: 'Its channel: the one with the largest max activation (first on ties).' }) get channel(): number {
    return this.occlusion.result.channel;
  }
  @Field(() => Float, { description: 'That largest activation.' }) get maxActivation(): number {
    return this.occlusion.result.channelMax;
  }
  @Field(() => FilterType) get filter(): FilterType {
    const { model, layer, result } = this.occlusion;
    return new FilterType({ model, layer, index: result.channel });
  }
}

@InheritMaxAge()
@ObjectType('OcclusionClass', { description: 'A class in the most-probable-class map, with its colour there.' })
export class OcclusionClassType {
  @Field(() => Int) classIndex!: number;
  @Field() label!: string;
  @Field({ description: '#rrggbb in topClass.imageUrl.' }) color!: string;
  @Field(() => Int, { description: 'Occluder positions at which it is the most probable class.' }) positions!: number;
}

@CacheFor()
@ObjectType('Occlusion', {
  description:
    'Occlusion sensitivity (Zeiler & Fergus §4.2, Fig. 7). A size × size square is placed at y0 = i·stride, x0 = j·stride ' +
    '(i < height = floor((H − size)/stride) + 1, j < width likewise; it always lies inside the image) on the PREPROCESSED ' +
    'input tensor at the model’s input size, every channel inside it set to the fill. Maps are [height, width] grids, row-major.',
})
export class OcclusionType {
  private readonly maps: ReturnType<typeof occlusionMaps>;
  constructor(readonly occlusion: Occlusion) {
    this.maps = occlusionMaps(occlusion);
  }
  @Field(() => Int, { description: 'Occluder positions across (grid columns).' }) get width(): number {
    return this.occlusion.result.width;
  }
  @Field(() => Int, { description: 'Occluder positions down (grid rows).' }) get height(): number {
    return this.occlusion.result.height;
  }
  @Field(() => Int, { description: 'Side of the square, in input pixels.' }) get size(): number {
    return this.occlusion.size;
  }
  @Field(() => Int, { description: 'Pixels between neighbouring positions.' }) get stride(): number {
    return this.occlusion.stride;
  }
  @Field(() => OcclusionFill) get fill(): FillMode {
    return this.occlusion.fill;
  }
  @Field(() => [Float], { description: 'The preprocessed value put in each input channel.' }) get fillValues(): number[] {
    return this.occlusion.fillValues;
  }
  @Field(() => Int, { description: 'The class of classProbability: as asked, or the top class of the unoccluded image.' }) get targetClass(): number {
    return this.occlusion.result.targetClass;
  }
  @Field() get targetLabel(): string {
    return classLabel(this.occlusion.model, this.occlusion.result.targetClass);
  }
  @Field(() => OcclusionFeatureMapType) get strongestMap(): OcclusionFeatureMapType {
    return new OcclusionFeatureMapType(this.occlusion);
  }
  @Field(() => Float, { description: 'strongestMap’s total activation on the unoccluded image.' }) get unoccludedActivation(): number {
    return this.occlusion.result.baselineTotal;
  }
  @Field(() => Float, { description: 'targetClass’s probability on the unoccluded image.' }) get unoccludedProbability(): number {
    return this.occlusion.result.baselineProbabilities[this.occlusion.result.targetClass];
  }
  @Field(() => OcclusionMapType, { description: '(b) Per position, the total activation (sum over the map) of strongestMap. PNG: jet from min to max.' })
  get strongestMapActivation(): OcclusionMapType {
    return new OcclusionMapType(this.maps.activation);
  }
  @Field(() => OcclusionMapType, { description: '(d) Per position, the probability of targetClass. PNG: jet from 0 to 1.' })
  get classProbability(): OcclusionMapType {
    return new OcclusionMapType(this.maps.probability);
  }
  @Field(() => OcclusionMapType, { description: '(e) Per position, the most probable class index (first on ties). PNG: colours of topClassLegend.' })
  get topClass(): OcclusionMapType {
    return new OcclusionMapType(this.maps.topClass);
  }
}

@Resolver(() => OcclusionMapType)
export class OcclusionMapResolver {
  @FieldResolver(() => String, {
    description:
      'PNG: the grid upsampled to the model’s input size (nearest occluder centre), blended 50 % over the image as the model sees it (after its resize: centre-cropped, or with the letterbox’s bars).',
  })
  imageUrl(@Root() root: OcclusionMapType, @Ctx() ctx: Context): Promise<string> {
    return occlusionMapImageUrl(ctx.services, root.map);
  }

  @FieldResolver(() => String, { description: 'Raw float32 [height, width] grid as .npy.' })
  tensorUrl(@Root() root: OcclusionMapType, @Ctx() ctx: Context): Promise<string> {
    return occlusionMapTensorUrl(ctx.services, root.map);
  }
}

@Resolver(() => OcclusionType)
export class OcclusionResolver {
  @FieldResolver(() => [OcclusionClassType], { description: 'The classes of topClass, most positions first.' })
  topClassLegend(@Root() root: OcclusionType): OcclusionClassType[] {
    return topClasses(root.occlusion);
  }

  @FieldResolver(() => ProjectionType, {
    nullable: true,
    description:
      '(c) The deconvnet projection of strongestMap’s strongest activation on the unoccluded image (null, with an error, if the model has an op without a projection rule).',
    complexity: costs(COST.projection),
  })
  async projection(@Root() root: OcclusionType, @Ctx() ctx: Context): Promise<ProjectionType> {
    // Filter.projection's own path (the default request), so a query asking for both computes it once.
    const { model, layer, image, result } = root.occlusion;
    return new ProjectionType(await projectUnit(ctx, { model, layer, index: result.channel }, image, {}));
  }
}

@Resolver(() => ModelType)
export class ModelPredictionResolver {
  @FieldResolver(() => [PredictionType], {
    description: 'The `top` most probable classes of an image, most probable first (ties: lower index first).',
    complexity: costs(COST.predict),
  })
  async predict(
    @Root() root: ModelType,
    @Arg('image', () => ImageInput) imageInput: ImageInput,
    @Arg('top', () => Int, { defaultValue: 5, description: 'How many; more than the classes gives them all.' }) top: number,
    @Ctx() ctx: Context,
  ): Promise<PredictionType[]> {
    return predict(ctx, root.model, await resolveImage(ctx, imageInput), top);
  }

  @FieldResolver(() => OcclusionType, {
    complexity: costs(COST.occlusion),
    description:
      'Occlusion sensitivity (ZF §4.2, Fig. 7): slides a size × size square over the preprocessed image and maps, per position, ' +
      "(b) the total activation of `layer`'s strongest feature map, (d) the probability of `targetClass`, (e) the most probable class; " +
      '(c) is that feature map’s projection. Errors: BAD_USER_INPUT for size/stride outside 1 … min(H, W) or more positions than MAX_OCCLUSION_POSITIONS; NOT_FOUND for an unknown layer.',
  })
  async occlusion(
    @Root() root: ModelType,
    @Arg('image', () => ImageInput) imageInput: ImageInput,
    @Arg('size', () => Int, { nullable: true, description: 'Side of the square in input pixels; default: min(H, W) / 7, rounded (32 at 224).' })
    size: number | undefined,
    @Arg('stride', () => Int, { nullable: true, description: 'Pixels between positions; default: size / 4, rounded (8 at size 32).' })
    stride: number | undefined,
    @Arg('fill', () => OcclusionFill, { defaultValue: OcclusionFill.MEAN }) fill: FillMode,
    @Arg('fillValue', () => Float, { nullable: true, description: 'The preprocessed value for fill: VALUE.' }) fillValue: number | undefined,
    @Arg('layer', () => String, {
      nullable: true,
      description:
        'The layer whose strongest feature map is followed; default: the last convolution with spatial output, through the ReLU (or BatchNormalization, residual Add…) right after it.',
    })
    layer: string | undefined,
    @Arg('targetClass', () => Int, { nullable: true, description: 'Class of classProbability; default: the top class of the unoccluded image.' })
    targetClass: number | undefined,
    @Ctx() ctx: Context,
  ): Promise<OcclusionType> {
    const image = await resolveImage(ctx, imageInput);
    const request = {
      size: size ?? undefined,
      stride: stride ?? undefined,
      fill,
      fillValue: fillValue ?? undefined,
      layer: layer ?? undefined,
      targetClass: targetClass ?? undefined,
    };
    return new OcclusionType(await occlusion(ctx, root.model, image, request));
  }
}
