import { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, ID, Info, Query, Resolver } from 'type-graphql';
import { Context } from '../src/context';
import { notFound } from '../src/errors';
import { DatasetType, findDataset, JobType } from './dataset.resolver';
import { describeImage, resolveImage } from './image.resolver';
import { checkFilterIndex, findLayer, findModel } from './lookup';
import { hintFromRuntimeType } from './cache-control';
import { fromGlobalId, NodeInterface, nodeTypeName } from './node';
import { FilterType, LayerType, ModelType } from './types';

@Resolver()
export class NodeResolver {
  @Query(() => NodeInterface, { description: 'Any object by its global ID.' })
  async node(@Arg('id', () => ID) id: string, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo): Promise<NodeInterface> {
    const node = await findNode(ctx, id);
    hintFromRuntimeType(info, nodeTypeName(node));
    return node;
  }
}

async function findNode(ctx: Context, id: string): Promise<NodeInterface> {
  const { type, parts } = fromGlobalId(id);
  const [modelName, layerName, index] = parts;
  switch (type) {
    case 'Model':
      return new ModelType(findModel(ctx, String(modelName)));
    case 'Layer': {
      const model = findModel(ctx, String(modelName));
      return new LayerType(model, findLayer(model, String(layerName)));
    }
    case 'Filter': {
      const model = findModel(ctx, String(modelName));
      const layer = findLayer(model, String(layerName));
      return new FilterType(model, layer, checkFilterIndex(model, layer, Number(index)));
    }
    case 'Image':
      return describeImage(ctx, await resolveImage(ctx, { id }));
    case 'Dataset':
      return new DatasetType(findDataset(ctx, String(parts[0])));
    case 'Job': {
      const info = ctx.services.jobs.info(String(parts[0]));
      if (!info) throw notFound(`no job ${id}`);
      return new JobType(info);
    }
    default:
      throw notFound(`no object of type "${type}": IDs name a Model, Layer, Filter, Image, Dataset or Job`);
  }
}
