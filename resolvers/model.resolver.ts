import { Arg, Args, Ctx, FieldResolver, Query, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { LayerKind } from '../src/onnx/ops';
import { NoCache } from './cache-control';
import { PageArgs, paginate } from './connection';
import { findLayer, findModel, snapshotOf, snapshots } from '../src/service/lookup';
import { LayerConnection, LayerType, ModelConnection, ModelErrorType, ModelType } from './types';
import { perItem } from './complexity';

@Resolver(() => ModelType)
export class ModelResolver {
  @NoCache()
  @Query(() => ModelConnection, { description: 'The models loaded from MODELS_DIR, by name.', complexity: perItem() })
  models(@Args() page: PageArgs, @Ctx() ctx: Context) {
    const models = [...ctx.services.registry.models.values()].map((m) => new ModelType(m));
    return paginate(models, page, ctx.services.config.maxPageSize);
  }

  @Query(() => ModelType, { description: 'A model by name (its file name without .onnx, or its TensorFlow.js folder name).' })
  model(@Arg('name') name: string, @Ctx() ctx: Context): ModelType {
    return new ModelType(findModel(ctx.services, name));
  }

  @NoCache()
  @Query(() => [ModelErrorType], { description: 'Files in MODELS_DIR that failed to load, and why.' })
  modelErrors(@Ctx() ctx: Context): ModelErrorType[] {
    return ctx.services.registry.errors.map((e) => new ModelErrorType(e));
  }

  @FieldResolver(() => LayerConnection, { description: 'Layers in topological order, optionally only some kinds.', complexity: perItem() })
  layers(
    @Root() root: ModelType,
    @Args() page: PageArgs,
    @Arg('kinds', () => [LayerKind], { nullable: true }) kinds: LayerKind[] | undefined,
    @Ctx() ctx: Context,
  ) {
    const layers = root.model.layers.filter((l) => !kinds || kinds.includes(l.kind)).map((l) => new LayerType(root.model, l));
    return paginate(layers, page, ctx.services.config.maxPageSize);
  }

  @FieldResolver(() => LayerType, { description: 'A layer by its ONNX node name.' })
  layer(@Root() root: ModelType, @Arg('name') name: string): LayerType {
    return new LayerType(root.model, findLayer(root.model, name));
  }

  @NoCache()
  @FieldResolver(() => [ModelType], { description: 'Training snapshots of this model, oldest first (ZF Fig. 4).' })
  snapshots(@Root() root: ModelType, @Ctx() ctx: Context): ModelType[] {
    return snapshots(ctx.services, root.model).map((m) => new ModelType(m));
  }

  @FieldResolver(() => ModelType, { nullable: true, description: 'The model this is a training snapshot of.' })
  snapshotOf(@Root() root: ModelType, @Ctx() ctx: Context): ModelType | null {
    const parent = snapshotOf(ctx.services, root.model);
    return parent ? new ModelType(parent) : null;
  }
}
