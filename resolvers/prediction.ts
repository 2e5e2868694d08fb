/**
 * Predictions and occlusion sensitivity (ZF §4.2, Fig. 7) as fields of Model, and their types.
 * The work is in src/inference.ts (checks, result cache) and src/engine/occlusion.ts (the grid).
 */
import { Arg, Ctx, Field, FieldResolver, Float, Int, ObjectType, registerEnumType, Resolver, Root } from 'type-graphql';
import { ENGINE_VERSION, modelCacheId } from '../src/cache/keys';
import { encodeNpy } from '../src/cache/npy';
import { seedShape } from '../src/compiler/projection';
import { Context } from '../src/context';
import { defaultOcclusionLayer, OcclusionResult } from '../src/engine/occlusion';
import { badInput } from '../src/errors';
import { classColor, FillMode, occlusionFill, occlusionPng } from '../src/images/occlusion';
import { modelPixels } from '../src/images/preprocess';
import { SourceImage } from '../src/inference';
import type { Layer, Model } from '../src/model';
import { projectUnit } from './filter.resolver';
import { ImageInput, resolveImage } from './image.resolver';
import { Lrn, ProjectionMethod, ProjectionType, Seed } from './inference';
import { CacheFor, InheritMaxAge } from './cache-control';
import { COST, costs } from './complexity';
import { findLayer } from './lookup';
import { FilterType, ModelType } from './types';

export enum OcclusionFill {
  MEAN = 'MEAN',
  ZERO = 'ZERO',
  VALUE = 'VALUE',
}
registerEnumType(OcclusionFill, {
  name: 'OcclusionFill',
  description: 'What the occluder is filled with. It replaces every channel of the PREPROCESSED input tensor inside the square.',
  valuesConfig: {
    MEAN: { description: 'The dataset mean: preprocessed value 0 (ZF’s grey square).' },
    ZERO: { description: 'A black pixel: (0 · scale − mean) / std per channel.' },
    VALUE: { description: '`fillValue`, a preprocessed value, in every channel.' },
  },
});

@CacheFor()
@ObjectType('Prediction', { description: 'A class and its probability.' })
export class PredictionType {
  @Field(() => Int) classIndex!: number;
  @Field({ description: 'From the sidecar’s labels (or "class i").' }) label!: string;
  @Field(() => Float, { description: 'Softmax of the logits, or the model’s output if it ends in a Softmax.' }) probability!: number;
}

/** What a map's blobs are made from. */
interface MapSource {
  model: Model;
  image: SourceImage;
  key: string;
  values: Float32Array;
  result: OcclusionResult;
  size: number;
  stride: number;
  range: { min: number; max: number } | 'classes';
}

@InheritMaxAge()
@ObjectType('OcclusionMap', { description: 'One value per occluder position: a [height, width] grid.' })
export class OcclusionMapType {
  constructor(readonly source: MapSource) {
    let min = Infinity;
    let max = -Infinity;
    for (const v of source.values) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    this.min = min;
    this.max = max;
  }
  @Field(() => Float) min: number;
  @Field(() => Float) max: number;
}

@InheritMaxAge()
@ObjectType('OcclusionFeatureMap', { description: 'The feature map occlusion follows: the layer’s strongest on the unoccluded image.' })
export class OcclusionFeatureMapType {
  constructor(
    readonly model: Model,
    readonly layerValue: Layer,
    channel: number,
    maxActivation: number,
  ) {
    this.layer = layerValue.name;
    this.channel = channel;
    this.maxActivation = maxActivation;
  }
  @Field({ description: 'The layer’s name.' }) layer: string;
  @Field(() => Int, { description: 'Its channel: the one with the largest max activation (first on ties).' }) channel: number;
  @Field(() => Float, { description: 'That largest activation.' }) maxActivation: number;
  @Field(() => FilterType) get filter(): FilterType {
    return new FilterType(this.model, this.layerValue, this.channel);
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
  constructor(
    readonly model: Model,
    readonly layerValue: Layer,
    readonly image: SourceImage,
    readonly result: OcclusionResult,
    params: { size: number; stride: number; fill: OcclusionFill; fillValues: number[] },
  ) {
    Object.assign(this, params);
    this.width = result.width;
    this.height = result.height;
    this.targetClass = result.targetClass;
    this.targetLabel = model.labels[result.targetClass] ?? `class ${result.targetClass}`;
    this.unoccludedActivation = result.baselineTotal;
    this.unoccludedProbability = result.baselineProbabilities[result.targetClass];
    this.strongestMap = new OcclusionFeatureMapType(model, layerValue, result.channel, result.channelMax);
    const key = `occlusion/${ENGINE_VERSION}/${modelCacheId(model)}/${image.sha256}/${layerValue.name}/${params.size}/${params.stride}/${params.fill}/${params.fillValues.join(',')}/${result.targetClass}`;
    const map = (name: string, values: Float32Array, range: MapSource['range'] | null) => {
      const m = new OcclusionMapType({ model, image, key: `${key}/${name}`, values, result, size: params.size, stride: params.stride, range: range ?? { min: 0, max: 0 } });
      if (!range) m.source.range = { min: m.min, max: m.max };
      return m;
    };
    this.strongestMapActivation = map('activation', result.activation, null);
    this.classProbability = map('probability', result.probability, { min: 0, max: 1 });
    this.topClass = map('top-class', result.topClass, 'classes');
  }
  @Field(() => Int, { description: 'Occluder positions across (grid columns).' }) width: number;
  @Field(() => Int, { description: 'Occluder positions down (grid rows).' }) height: number;
  @Field(() => Int, { description: 'Side of the square, in input pixels.' }) size!: number;
  @Field(() => Int, { description: 'Pixels between neighbouring positions.' }) stride!: number;
  @Field(() => OcclusionFill) fill!: OcclusionFill;
  @Field(() => [Float], { description: 'The preprocessed value put in each input channel.' }) fillValues!: number[];
  @Field(() => Int, { description: 'The class of classProbability: as asked, or the top class of the unoccluded image.' }) targetClass: number;
  @Field() targetLabel: string;
  @Field(() => OcclusionFeatureMapType) strongestMap: OcclusionFeatureMapType;
  @Field(() => Float, { description: 'strongestMap’s total activation on the unoccluded image.' }) unoccludedActivation: number;
  @Field(() => Float, { description: 'targetClass’s probability on the unoccluded image.' }) unoccludedProbability: number;
  @Field(() => OcclusionMapType, { description: '(b) Per position, the total activation (sum over the map) of strongestMap. PNG: jet from min to max.' })
  strongestMapActivation: OcclusionMapType;
  @Field(() => OcclusionMapType, { description: '(d) Per position, the probability of targetClass. PNG: jet from 0 to 1.' })
  classProbability: OcclusionMapType;
  @Field(() => OcclusionMapType, { description: '(e) Per position, the most probable class index (first on ties). PNG: colours of topClassLegend.' })
  topClass: OcclusionMapType;
}

@Resolver(() => OcclusionMapType)
export class OcclusionMapResolver {
  @FieldResolver(() => String, {
    description: 'PNG: the grid upsampled to the model’s input size (nearest occluder centre), blended 50 % over the image as the model sees it (after its resize: centre-cropped, or with the letterbox’s bars).',
  })
  imageUrl(@Root() root: OcclusionMapType, @Ctx() ctx: Context): Promise<string> {
    const s = root.source;
    return ctx.services.blobs.cached(`${s.key}/png`, 'png', async () => {
      const pixels = await modelPixels(s.image.bytes, s.model.preprocessing, ctx.services.config);
      return occlusionPng(pixels, s.model.preprocessing, { values: s.values, width: s.result.width, height: s.result.height, size: s.size, stride: s.stride }, s.range);
    });
  }

  @FieldResolver(() => String, { description: 'Raw float32 [height, width] grid as .npy.' })
  tensorUrl(@Root() root: OcclusionMapType, @Ctx() ctx: Context): Promise<string> {
    const s = root.source;
    return ctx.services.blobs.cached(`${s.key}/npy`, 'npy', () => encodeNpy(s.values, [s.result.height, s.result.width]));
  }
}

@Resolver(() => OcclusionType)
export class OcclusionResolver {
  @FieldResolver(() => [OcclusionClassType], { description: 'The classes of topClass, most positions first.' })
  topClassLegend(@Root() root: OcclusionType): OcclusionClassType[] {
    const counts = new Map<number, number>();
    for (const k of root.result.topClass) counts.set(k, (counts.get(k) ?? 0) + 1);
    return [...counts]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .map(([k, positions]) => ({ classIndex: k, label: root.model.labels[k] ?? `class ${k}`, color: classColor(k), positions }));
  }

  @FieldResolver(() => ProjectionType, {
    nullable: true,
    description: '(c) The deconvnet projection of strongestMap’s strongest activation on the unoccluded image (null, with an error, if the model has an op without a projection rule).',
    complexity: costs(COST.projection),
  })
  projection(@Root() root: OcclusionType, @Ctx() ctx: Context): Promise<ProjectionType> {
    // Filter.projection's own path, so a query asking for both computes it once.
    const unit = new FilterType(root.model, root.layerValue, root.result.channel);
    return projectUnit(ctx, unit, root.image, { method: ProjectionMethod.DECONVNET, seed: Seed.MAX, lrn: Lrn.IDENTITY });
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
    if (!Number.isInteger(top) || top < 1) throw badInput(`top must be at least 1, got ${top}`, { argument: 'top' });
    const image = await resolveImage(ctx, imageInput);
    const probabilities = await ctx.services.inference.predict(root.model, image);
    const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
    return order.slice(0, top).map((k) => ({ classIndex: k, label: root.model.labels[k] ?? `class ${k}`, probability: probabilities[k] }));
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
    @Arg('size', () => Int, { nullable: true, description: 'Side of the square in input pixels; default: min(H, W) / 7, rounded (32 at 224).' }) sizeArg: number | undefined,
    @Arg('stride', () => Int, { nullable: true, description: 'Pixels between positions; default: size / 4, rounded (8 at size 32).' }) strideArg: number | undefined,
    @Arg('fill', () => OcclusionFill, { defaultValue: OcclusionFill.MEAN }) fill: OcclusionFill,
    @Arg('fillValue', () => Float, { nullable: true, description: 'The preprocessed value for fill: VALUE.' }) fillValue: number | undefined,
    @Arg('layer', () => String, { nullable: true, description: 'The layer whose strongest feature map is followed; default: the last convolution with spatial output, through the ReLU (or BatchNormalization, residual Add…) right after it.' })
    layerName: string | undefined,
    @Arg('targetClass', () => Int, { nullable: true, description: 'Class of classProbability; default: the top class of the unoccluded image.' }) targetClass: number | undefined,
    @Ctx() ctx: Context,
  ): Promise<OcclusionType> {
    const model = root.model;
    if ((fill === OcclusionFill.VALUE) !== (fillValue != null)) {
      throw badInput(fill === OcclusionFill.VALUE ? 'fill: VALUE needs a `fillValue`' : '`fillValue` is only used with fill: VALUE', { argument: 'fillValue' });
    }
    const layer = layerName != null ? findLayer(model, layerName) : defaultOcclusionLayer(model.graph, model.layers);
    if (!layer) throw badInput(`model "${model.name}" has no layer with spatial feature maps: give a \`layer\``, { argument: 'layer' });
    seedShapeOrBadInput(layer);
    const size = sizeArg ?? Math.max(1, Math.round(Math.min(model.inputShape[1], model.inputShape[2]) / 7));
    const stride = strideArg ?? Math.max(1, Math.round(size / 4));
    const image = await resolveImage(ctx, imageInput);
    const fillValues = occlusionFill(model.preprocessing, fill as FillMode, fillValue ?? undefined);
    const result = await ctx.services.inference.occlusion(model, layer, image, { size, stride, fill: fillValues, targetClass: targetClass ?? undefined });
    return new OcclusionType(model, layer, image, result, { size, stride, fill, fillValues });
  }
}

function seedShapeOrBadInput(layer: Layer): void {
  try {
    seedShape(layer.outputShape);
  } catch {
    throw badInput(`layer "${layer.name}" outputs [${layer.outputShape}], not feature maps [C, H, W] or units [F]`, { argument: 'layer' });
  }
}
