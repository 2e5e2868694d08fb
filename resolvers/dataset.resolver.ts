/**
 * Datasets, index jobs and the top-k of each filter (ZF Fig. 2): its strongest activations
 * over a dataset, with their receptive-field patches and projections.
 */
import sharp from 'sharp';
import { Arg, Args, Ctx, Field, FieldResolver, Float, ID, Int, Mutation, ObjectType, Query, registerEnumType, Resolver, Root, Subscription } from 'type-graphql';
import { modelCacheId } from '../src/cache/keys';
import { Context } from '../src/context';
import { ApiError, badInput, listSome, notFound } from '../src/errors';
import { projectionPixels } from '../src/images/maps';
import { patch, patchPng } from '../src/images/patches';
import { toOriginal } from '../src/images/placement';
import { topGridPng } from '../src/images/topgrid';
import { inspectImage } from '../src/images/preprocess';
import { defaultIndexLayers, JobInfo } from '../src/index/jobs';
import { JOB_STATES, JobState, TopRow } from '../src/index/store';
import { unitBox } from '../src/onnx/ops';
import { SourceImage } from '../src/inference';
import { JOB_PROGRESS } from '../src/pubsub';
import { Dataset } from '../src/registry/datasets';
import { InheritMaxAge, NoCache } from './cache-control';
import { COST, costs, pageSize, perItem } from './complexity';
import { Connection, PageArgs, paginate } from './connection';
import { projectUnit } from './filter.resolver';
import { datasetImage, describeImage, ImageType } from './image.resolver';
import { BoxType, Lrn, Position, PositionInput, ProjectionMethod, ProjectionType, Seed } from './inference';
import { findLayer, findModel } from './lookup';
import { fromGlobalId, NodeInterface, toGlobalId } from './node';
import { FilterType, LayerType } from './types';

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

/** The store's job states as a GraphQL enum. */
export const JobStateEnum = Object.fromEntries(JOB_STATES.map((s) => [s, s])) as { [S in JobState]: S };
registerEnumType(JobStateEnum, { name: 'JobState' });

@NoCache() // its state and progress change while it runs
@ObjectType('Job', { implements: NodeInterface, description: 'A top-k index job: a model run over a dataset. Poll it with node(id) or subscribe to jobProgress.' })
export class JobType implements NodeInterface {
  static graphqlName = 'Job';
  constructor(readonly info: JobInfo) {}
  @Field(() => ID) get id(): string {
    return toGlobalId('Job', this.info.id);
  }
  @Field(() => JobStateEnum) get state(): string {
    return this.info.state;
  }
  @Field() get model(): string {
    return this.info.model;
  }
  @Field() get dataset(): string {
    return this.info.dataset;
  }
  @Field(() => [String]) get layers(): string[] {
    return this.info.layers;
  }
  @Field(() => Int) get k(): number {
    return this.info.k;
  }
  @Field(() => Int) get imagesDone(): number {
    return this.info.imagesDone;
  }
  @Field(() => Int) get imagesTotal(): number {
    return this.info.imagesTotal;
  }
  @Field(() => Float, { nullable: true, description: 'Images per second in this run.' }) get rate(): number | null {
    return this.info.rate;
  }
  @Field(() => Float, { nullable: true, description: 'Seconds left at that rate.' }) get eta(): number | null {
    return this.info.eta;
  }
  @Field(() => String, { nullable: true }) get error(): string | null {
    return this.info.error;
  }
}

@InheritMaxAge()
@ObjectType('TopActivation', { description: 'One of the images that excite a filter most (ZF Fig. 2).' })
export class TopActivationType {
  constructor(
    readonly unit: FilterType,
    readonly dataset: Dataset,
    readonly row: TopRow,
  ) {}
  private sourceImage?: SourceImage;
  /** The dataset image, read (and hashed) once however many fields need it. */
  source(ctx: Context): SourceImage {
    return (this.sourceImage ??= datasetImage(ctx, this.dataset.name, this.dataset.images[this.row.image].name));
  }
  @Field(() => Int, { description: '0 for the strongest.' }) get rank(): number {
    return this.row.rank;
  }
  @Field(() => Float, { description: "The filter's spatial maximum on this image." }) get value(): number {
    return this.row.value;
  }
  @Field(() => Position, { description: 'Where in the feature map.' }) get position(): Position {
    return { y: this.row.y, x: this.row.x };
  }
}

const TopActivationConnection = Connection(TopActivationType, 'TopActivation');
const DatasetConnection = Connection(DatasetType, 'Dataset');
const ImageConnection = Connection(ImageType, 'Image');

export function findDataset(ctx: Context, name: string): Dataset {
  const dataset = ctx.services.datasets.datasets.get(name);
  if (!dataset) throw notFound(`no dataset "${name}"; datasets: ${listSome(ctx.services.datasets.names())}`, { dataset: name });
  return dataset;
}

/** The finished index covering the filter's layer, or INDEX_NOT_BUILT saying how to build one. */
function topRows(ctx: Context, unit: FilterType, dataset: Dataset): TopRow[] {
  const index = ctx.services.jobs.finished(unit.model, dataset, unit.layer.name);
  if (!index) {
    throw new ApiError(
      'INDEX_NOT_BUILT',
      `no finished index of model "${unit.model.name}" over dataset "${dataset.name}" covers layer "${unit.layer.name}": run mutation { buildIndex(model: "${unit.model.name}", dataset: "${dataset.name}") { id state } } and wait for it to be DONE`,
      { model: unit.model.name, dataset: dataset.name, layer: unit.layer.name },
    );
  }
  return ctx.services.jobs.store.top(index.id, unit.layer.name, unit.index);
}

@Resolver(() => DatasetType)
export class DatasetResolver {
  @NoCache()
  @Query(() => DatasetConnection, { description: 'The datasets under DATASETS_DIR.', complexity: perItem() })
  datasets(@Args() page: PageArgs, @Ctx() ctx: Context) {
    return paginate([...ctx.services.datasets.datasets.values()].map((d) => new DatasetType(d)), page, ctx.services.config.maxPageSize);
  }

  @Query(() => DatasetType)
  dataset(@Arg('name') name: string, @Ctx() ctx: Context): DatasetType {
    return new DatasetType(findDataset(ctx, name));
  }

  @FieldResolver(() => ImageConnection, { description: 'Images in name order.', complexity: perItem() })
  async images(@Root() root: DatasetType, @Args() page: PageArgs, @Ctx() ctx: Context) {
    const result = paginate(root.dataset.images, page, ctx.services.config.maxPageSize);
    const described = await Promise.all(result.nodes.map((img) => describeImage(ctx, datasetImage(ctx, root.dataset.name, img.name))));
    return { ...result, nodes: described, edges: result.edges.map((e, i) => ({ cursor: e.cursor, node: described[i] })) };
  }

  @Query(() => [JobType], { description: 'Every index job this server knows, oldest first.' })
  jobs(@Ctx() ctx: Context): JobType[] {
    return ctx.services.jobs.all().map((j) => new JobType(j));
  }

  @Mutation(() => JobType, {
    description:
      'Starts indexing `dataset` with `model` (returns at once): for each channel of `layers` (default: every Conv and Relu), the k images with the highest spatial maximum. An index that exists unchanged is returned as is; an interrupted one resumes.',
  })
  buildIndex(
    @Arg('model') modelName: string,
    @Arg('dataset') datasetName: string,
    @Arg('layers', () => [String], { nullable: true }) layers: string[] | undefined,
    @Arg('k', () => Int, { defaultValue: 9 }) k: number,
    @Ctx() ctx: Context,
  ): JobType {
    const model = findModel(ctx, modelName);
    const dataset = findDataset(ctx, datasetName);
    if (!Number.isInteger(k) || k < 1 || k > 100) throw badInput(`k must be between 1 and 100, got ${k}`, { argument: 'k' });
    const chosen = layers ?? defaultIndexLayers(model);
    if (chosen.length === 0) throw badInput('give at least one layer');
    for (const name of chosen) findLayer(model, name);
    if (dataset.images.length === 0) throw badInput(`dataset "${dataset.name}" has no images`);
    return new JobType(ctx.services.jobs.start(model, dataset, [...new Set(chosen)], k));
  }

  @Mutation(() => JobType, { description: 'Stops a running job after its current batch; buildIndex resumes it later.' })
  cancelJob(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): JobType {
    const info = ctx.services.jobs.cancel(jobKey(id));
    if (!info) throw notFound(`no job ${id}`);
    return new JobType(info);
  }

  @Subscription(() => JobType, {
    topics: JOB_PROGRESS,
    filter: ({ payload, args }: { payload: JobInfo; args: { id: string } }) => payload.id === jobKey(args.id),
    description: "A job's progress, after every batch and when it ends.",
  })
  jobProgress(@Root() info: JobInfo, @Arg('id', () => ID) _id: string): JobType {
    return new JobType(info);
  }
}

/** The store's job id inside a Job's global ID. */
export function jobKey(id: string): string {
  const { type, parts } = fromGlobalId(id);
  if (type !== 'Job') throw badInput(`"${id}" is not a job ID`);
  return String(parts[0]);
}

@Resolver(() => FilterType)
export class TopActivationsResolver {
  @NoCache() // read from the newest finished index
  @FieldResolver(() => TopActivationConnection, {
    description: 'The images of a dataset that excite this filter most (one per image, best first), from a built index.',
    complexity: perItem(9),
  })
  topActivations(@Root() root: FilterType, @Arg('dataset') datasetName: string, @Args() page: PageArgs, @Ctx() ctx: Context) {
    const dataset = findDataset(ctx, datasetName);
    const rows = topRows(ctx, root, dataset);
    return paginate(rows.map((r) => new TopActivationType(root, dataset, r)), { first: page.first ?? 9, after: page.after }, ctx.services.config.maxPageSize);
  }
}

@Resolver(() => TopActivationType)
export class TopActivationResolver {
  @FieldResolver(() => ImageType)
  image(@Root() root: TopActivationType, @Ctx() ctx: Context): Promise<ImageType> {
    return describeImage(ctx, root.source(ctx));
  }

  @FieldResolver(() => BoxType, { description: "The unit's receptive field in the original image's pixels, clipped." })
  async box(@Root() root: TopActivationType, @Ctx() ctx: Context): Promise<BoxType> {
    return (await originalBox(ctx, root)).box;
  }

  @FieldResolver(() => String, { description: 'PNG of that box of the original image.' })
  async patchUrl(@Root() root: TopActivationType, @Ctx() ctx: Context): Promise<string> {
    const { box, image } = await originalBox(ctx, root);
    const key = `patch/${image.sha256}/${box.x},${box.y},${box.width},${box.height}`;
    return ctx.services.blobs.cached(key, 'png', () => patchPng(image.bytes, box));
  }

  @FieldResolver(() => ProjectionType, { description: 'The projection of this activation (imageUrl(crop: true) cuts it to the receptive field).', complexity: costs(COST.projection) })
  projection(
    @Root() root: TopActivationType,
    @Arg('method', () => ProjectionMethod, { defaultValue: ProjectionMethod.DECONVNET }) method: ProjectionMethod,
    @Arg('seed', () => Seed, { defaultValue: Seed.MAX }) seed: Seed,
    @Arg('position', () => PositionInput, { nullable: true }) position: PositionInput | undefined,
    @Arg('lrn', () => Lrn, { nullable: true }) lrn: Lrn | undefined,
    @Ctx() ctx: Context,
  ): Promise<ProjectionType> {
    const image = root.source(ctx);
    return projectUnit(ctx, root.unit, image, { method, seed, position, lrn });
  }
}

@Resolver(() => LayerType)
export class TopActivationsGridResolver {
  @NoCache() // read from the newest finished index
  @FieldResolver(() => String, {
    description:
      'ZF Fig. 2 for a page of this layer\'s filters as one PNG: for each, its top-k projections (cropped to the receptive field) beside the image patches. Needs a built index.',
    complexity: ({ args, childComplexity }) => childComplexity + pageSize(args, 16) * (args.k ?? 9) * COST.projection,
  })
  async topActivationsGrid(
    @Root() root: LayerType,
    @Arg('dataset') datasetName: string,
    @Args() page: PageArgs,
    @Arg('k', () => Int, { defaultValue: 9 }) k: number,
    @Ctx() ctx: Context,
  ): Promise<string> {
    const dataset = findDataset(ctx, datasetName);
    if (!Number.isInteger(k) || k < 1 || k > 100) throw badInput(`k must be between 1 and 100, got ${k}`, { argument: 'k' });
    const count = root.layer.outputShape[0] ?? 0;
    const units = paginate(Array.from({ length: count }, (_, i) => new FilterType(root.model, root.layer, i)), { first: page.first ?? 16, after: page.after }, ctx.services.config.maxPageSize).nodes;
    const index = ctx.services.jobs.finished(root.model, dataset, root.layer.name);
    const key = `top-grid/v1/${modelCacheId(root.model)}/${dataset.fingerprint}/${index?.id}/${root.layer.name}/${units.map((u) => u.index).join(',')}/${k}`;
    return ctx.services.blobs.cached(key, 'png', async () => {
      const tiles = await Promise.all(
        units.map(async (unit) => {
          const rows = topRows(ctx, unit, dataset).slice(0, k);
          const entries = await Promise.all(
            rows.map(async (row) => {
              const top = new TopActivationType(unit, dataset, row);
              const image = top.source(ctx);
              const projection = await projectUnit(ctx, unit, image, { method: ProjectionMethod.DECONVNET, seed: Seed.MAX });
              const { box } = await originalBox(ctx, top);
              const picture = projectionPixels(projection.result.projection, unit.model.preprocessing, projection.inputBox);
              const { pixels, width, height, channels } = picture;
              return {
                projection: { image: sharp(pixels, { raw: { width, height, channels: channels as 1 | 3 } }), width, height },
                patch: { image: patch(image.bytes, box), width: box.width, height: box.height },
              };
            }),
          );
          return { projections: entries.map((e) => e.projection), patches: entries.map((e) => e.patch) };
        }),
      );
      return topGridPng(tiles, k);
    });
  }
}

async function originalBox(ctx: Context, root: TopActivationType) {
  const image = root.source(ctx);
  const { model, layer } = root.unit;
  const [, H, W] = model.inputShape;
  const inputBox = unitBox(layer.receptiveField, root.row.y, root.row.x, [H, W]);
  const info = await inspectImage(image.bytes, ctx.services.config);
  return { image, box: toOriginal(inputBox, info, model.preprocessing) };
}

