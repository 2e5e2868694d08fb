/** Datasets: the folders of images under DATASETS_DIR that index jobs run over. */
import { Arg, Args, Ctx, Field, FieldResolver, ID, Int, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { Dataset } from '../src/registry/datasets';
import { datasetImage } from '../src/service/images';
import { findDataset } from '../src/service/lookup';
import { NoCache } from './cache-control';
import { perItem } from './complexity';
import { Connection, PageArgs, paginate } from './connection';
import { imageType, ImageType } from './image.resolver';
import { NodeInterface, toGlobalId } from './node';

@NoCache() // its images are what its folder holds
@ObjectType('Dataset', { implements: NodeInterface, description: 'A folder of images under DATASETS_DIR.' })
export class DatasetType implements NodeInterface {
  static graphqlName = 'Dataset';
  constructor(readonly dataset: Dataset) {}
  @Field(() => ID) get id(): string {
    return toGlobalId('Dataset', this.dataset.name);
  }
  @Field() get name(): string {
    return this.dataset.name;
  }
  @Field(() => Int, { description: 'Number of images.' }) get size(): number {
    return this.dataset.images.length;
  }
  @Field({ description: 'Changes whenever an image or the labels change: indexes are keyed by it.' }) get fingerprint(): string {
    return this.dataset.fingerprint;
  }
}

const DatasetConnection = Connection(DatasetType, 'Dataset');
const ImageConnection = Connection(ImageType, 'Image');

@Resolver(() => DatasetType)
export class DatasetResolver {
  @NoCache()
  @Query(() => DatasetConnection, { description: 'The datasets under DATASETS_DIR.', complexity: perItem() })
  datasets(@Args() page: PageArgs, @Ctx() ctx: Context) {
    return paginate(
      [...ctx.services.datasets.datasets.values()].map((d) => new DatasetType(d)),
      page,
      ctx.services.config.maxPageSize,
    );
  }

  @Query(() => DatasetType)
  dataset(@Arg('name') name: string, @Ctx() ctx: Context): DatasetType {
    return new DatasetType(findDataset(ctx.services, name));
  }

  @FieldResolver(() => ImageConnection, { description: 'Images in name order.', complexity: perItem() })
  async images(@Root() root: DatasetType, @Args() page: PageArgs, @Ctx() ctx: Context) {
    const result = paginate(root.dataset.images, page, ctx.services.config.maxPageSize);
    const described = await Promise.all(result.nodes.map((img) => imageType(ctx, datasetImage(ctx.services, root.dataset.name, img.name))));
    return { ...result, nodes: described, edges: result.edges.map((e, i) => ({ cursor: e.cursor, node: described[i] })) };
  }
}
