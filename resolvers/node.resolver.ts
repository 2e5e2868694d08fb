import { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, ID, Info, Query, Resolver } from 'type-graphql';
import { Context } from '../src/context';
import { notFound } from '../src/errors';
import { findJob } from '../src/service/jobs';
import { findDataset, findLayer, findModel, findUnit } from '../src/service/lookup';
import { DatasetType } from './dataset.resolver';
import { imageType, resolveImage } from './image.resolver';
import { JobType } from './job.resolver';
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
  const { services } = ctx;
  const { type, parts } = fromGlobalId(id);
  const [modelName, layerName, index] = parts;
  switch (type) {
    case 'Model':
      return new ModelType(findModel(services, String(modelName)));
    case 'Layer': {
      const model = findModel(services, String(modelName));
      return new LayerType(model, findLayer(model, String(layerName)));
    }
    case 'Filter': {
      const model = findModel(services, String(modelName));
      return new FilterType(findUnit(model, findLayer(model, String(layerName)), Number(index)));
    }
    case 'Image':
      return imageType(ctx, await resolveImage(ctx, { id }));
    case 'Dataset':
      return new DatasetType(findDataset(services, String(parts[0])));
    case 'Job': {
      const info = await findJob(services, String(parts[0]));
      if (!info) throw notFound(`no job ${id}`);
      return new JobType(info);
    }
    default:
      throw notFound(`no object of type "${type}": IDs name a Model, Layer, Filter, Image, Dataset or Job`);
  }
}
