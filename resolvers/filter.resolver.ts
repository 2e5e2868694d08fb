import { Arg, Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import { seedShape } from '../src/compiler/projection';
import { ENGINE_VERSION, modelCacheId } from '../src/cache/keys';
import { Context } from '../src/context';
import { badInput } from '../src/errors';
import { hasKernelImages, kernelPng } from '../src/images/filters';
import { channelStats, mapPng } from '../src/images/maps';
import { unitBox } from '../src/onnx/ops';
import { layerWeights } from '../src/registry/weights';
import { SourceImage } from '../src/inference';
import { ImageInput, resolveImage } from './image.resolver';
import { ActivationType, Lrn, PositionInput, ProjectionMethod, ProjectionType, Seed } from './inference';
import { FilterType, FilterWeightsType, LayerType } from './types';
import { COST, costs } from './complexity';

@Resolver(() => FilterType)
export class FilterResolver {
  @FieldResolver(() => LayerType)
  layer(@Root() root: FilterType): LayerType {
    return new LayerType(root.model, root.layer);
  }

  @FieldResolver(() => FilterWeightsType, { nullable: true, description: 'Null for layers without weights (ReLU, pooling, …).', complexity: costs(COST.render) })
  async weights(@Root() root: FilterType, @Ctx() ctx: Context): Promise<FilterWeightsType | null> {
    const weights = layerWeights(root.model, root.layer);
    if (!weights) return null;
    const w = weights.filter(root.index);
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let squares = 0;
    for (const v of w) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
      squares += v * v;
    }
    const key = `kernel/v1/${modelCacheId(root.model)}/${root.layer.name}/${root.index}`;
    const imageUrl = hasKernelImages(weights) ? await ctx.services.blobs.cached(key, 'png', () => kernelPng(root.model, weights, root.index)) : null;
    return { shape: weights.filterShape, min, max, mean: sum / w.length, l2: Math.sqrt(squares), imageUrl };
  }

  @FieldResolver(() => ProjectionType, {
    description:
      "The deconvnet projection of this filter's activation on an image down to its pixels (ZF §2.1), or another backward rule. lrn defaults to GRADIENT for SALIENCY and IDENTITY otherwise.",
    complexity: costs(COST.projection),
  })
  async projection(
    @Root() root: FilterType,
    @Arg('image', () => ImageInput) imageInput: ImageInput,
    @Arg('method', () => ProjectionMethod, { defaultValue: ProjectionMethod.DECONVNET }) method: ProjectionMethod,
    @Arg('seed', () => Seed, { defaultValue: Seed.MAX }) seed: Seed,
    @Arg('position', () => PositionInput, { nullable: true }) position: PositionInput | undefined,
    @Arg('lrn', () => Lrn, { nullable: true }) lrnArg: Lrn | undefined,
    @Ctx() ctx: Context,
  ): Promise<ProjectionType> {
    return projectUnit(ctx, root, await resolveImage(ctx, imageInput), { method, seed, position, lrn: lrnArg });
  }

  @FieldResolver(() => ActivationType, { description: "This filter's feature map for an image.", complexity: costs(COST.activation) })
  async activation(@Root() root: FilterType, @Arg('image', () => ImageInput) imageInput: ImageInput, @Ctx() ctx: Context): Promise<ActivationType> {
    const { model, layer, index } = root;
    const image = await resolveImage(ctx, imageInput);
    const all = await ctx.activations.load({ model, layer, image });
    const [C, H, W] = seedShape(layer.outputShape);
    const map = all.subarray(index * H * W, (index + 1) * H * W);
    const [stats] = channelStats(map, 1);
    let best = 0;
    for (let i = 1; i < map.length; i++) if (map[i] > map[best]) best = i;
    const key = `activation-map/${ENGINE_VERSION}/${modelCacheId(model)}/${image.sha256}/${layer.name}/${index}/${C}`;
    const mapUrl = await ctx.services.blobs.cached(key, 'png', () => mapPng(Float32Array.from(map), H, W));
    return { min: stats.min, max: stats.max, mean: stats.mean, position: { y: Math.floor(best / W), x: best % W }, mapUrl };
  }
}

export interface ProjectionArgs {
  method: ProjectionMethod;
  seed: Seed;
  position?: PositionInput;
  lrn?: Lrn;
}

/** The projection of one unit on one image: Filter.projection and TopActivation.projection. */
export async function projectUnit(ctx: Context, unit: FilterType, image: SourceImage, args: ProjectionArgs): Promise<ProjectionType> {
  const { model, layer, index } = unit;
  const { method, seed, position } = args;
  const lrnArg = args.lrn;

  const [, Ht, Wt] = seedShape(layer.outputShape);
  if (seed === Seed.POSITION) {
    if (!position) throw badInput('seed POSITION needs a `position: {y, x}`', { argument: 'position' });
    if (!Number.isInteger(position.y) || !Number.isInteger(position.x) || position.y < 0 || position.x < 0 || position.y >= Ht || position.x >= Wt) {
      throw badInput(`position (${position.y}, ${position.x}) is outside the ${Ht}×${Wt} map of layer "${layer.name}"`, { argument: 'position' });
    }
  } else if (position) {
    throw badInput('`position` is only used with seed: POSITION', { argument: 'position' });
  }
  const lrn = lrnArg ?? (method === ProjectionMethod.SALIENCY ? Lrn.GRADIENT : Lrn.IDENTITY);
  const options = { method, lrn, channel: index, seed, position: seed === Seed.POSITION ? { y: position!.y, x: position!.x } : undefined };
  const result = await ctx.projections.load({ model, layer, image, options });
  const imageHW: [number, number] = [model.inputShape[1], model.inputShape[2]];
  const rf = layer.receptiveField;
  let inputBox = unitBox(rf, result.position.y, result.position.x, imageHW);
  if (seed === Seed.FULL_MAP) {
    const last = unitBox(rf, Ht - 1, Wt - 1, imageHW);
    inputBox = { x: inputBox.x, y: inputBox.y, width: last.x + last.width - inputBox.x, height: last.y + last.height - inputBox.y };
  }
  const key = `projection/${ENGINE_VERSION}/${modelCacheId(model)}/${image.sha256}/${layer.name}/${index}/${method}/${seed}/${result.position.y},${result.position.x}/${lrn}`;
  return new ProjectionType({ model, layer, key }, image, result, inputBox, { method, seed, lrn });
}
