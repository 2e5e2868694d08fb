/**
 * Jobs: index jobs (a model run over a dataset to find each filter's top-k images, ZF Fig. 2)
 * atlas jobs (every unit's top-k written as a static site) and feature visualization jobs.
 */
import { Arg, Args, ArgsType, Ctx, Field, Float, ID, Int, Mutation, ObjectType, Query, Resolver, Root, Subscription } from 'type-graphql';
import { Context } from '../src/context';
import { badInput, notFound } from '../src/errors';
import { JobInfo } from '../src/index/jobs';
import { startFeatureVisualization } from '../src/service/feature-visualization-job';
import { findDataset, findLayer, findModel, findUnit } from '../src/service/lookup';
import { buildAtlas } from '../src/service/atlas';
import { allJobs, cancelJob, jobUpdates } from '../src/service/jobs';
import { buildIndex } from '../src/service/top-activations';
import { NoCache } from './cache-control';
import { FeatureVisualizationArgs } from './feature-visualization';
import { JobKindEnum, JobStateEnum } from './enums';
import { fromGlobalId, NodeInterface, toGlobalId } from './node';

@ObjectType('FailedImage', { description: 'A dataset image an index job left out: it could not be read or decoded.' })
export class FailedImageType {
  @Field({ description: 'Its file name in the dataset.' }) name!: string;
  @Field(() => Int, { description: 'Its position in the dataset (name order).' }) index!: number;
  @Field({ description: 'Why it failed.' }) error!: string;
}

@NoCache() // its state and progress change while it runs
@ObjectType('Job', {
  implements: NodeInterface,
  description:
    'A job: a top-k index (a model run over a dataset; buildIndex), a whole-model atlas (buildAtlas) or a feature visualization (startFeatureVisualization). Poll it with node(id) or subscribe to jobProgress.',
})
export class JobType implements NodeInterface {
  static graphqlName = 'Job';
  constructor(readonly info: JobInfo) {}
  @Field(() => ID) get id(): string {
    return toGlobalId('Job', this.info.id);
  }
  @Field(() => JobKindEnum) get kind(): string {
    return this.info.kind;
  }
  @Field(() => JobStateEnum) get state(): string {
    return this.info.state;
  }
  @Field() get model(): string {
    return this.info.model;
  }
  @Field({ description: 'The dataset of an index or atlas job ("" for a feature visualization job).' }) get dataset(): string {
    return this.info.dataset;
  }
  @Field(() => [String]) get layers(): string[] {
    return this.info.layers;
  }
  @Field(() => Int, { description: 'Top k of an index or atlas job (0 for a feature visualization job).' }) get k(): number {
    return this.info.k;
  }
  @Field(() => Int, { description: 'Images indexed (an atlas job: of the index it builds or waits for first).' }) get imagesDone(): number {
    return this.info.imagesDone;
  }
  @Field(() => Int) get imagesTotal(): number {
    return this.info.imagesTotal;
  }
  @Field(() => Int, {
    nullable: true,
    description: 'Atlas jobs: units whose pages are written; feature visualization jobs: optimisation steps done (null for index jobs).',
  })
  get unitsDone(): number | null {
    return this.info.unitsDone;
  }
  @Field(() => Int, {
    nullable: true,
    description: 'Atlas jobs: units of the atlas, once its index is built; feature visualization jobs: its steps (null for index jobs).',
  })
  get unitsTotal(): number | null {
    return this.info.unitsTotal;
  }
  @Field(() => String, {
    nullable: true,
    description:
      "Once DONE, atlas jobs: the URL of the atlas's index.html, a static site; feature visualization jobs: the URL of its PNG, as Filter.featureVisualization's imageUrl (else null).",
  })
  get url(): string | null {
    return this.info.url;
  }
  @Field(() => Float, { nullable: true, description: 'Images (index jobs), units (atlas jobs) or steps (feature visualization jobs) per second in this run.' })
  get rate(): number | null {
    return this.info.rate;
  }
  @Field(() => Float, { nullable: true, description: 'Seconds left at that rate.' }) get eta(): number | null {
    return this.info.eta;
  }
  @Field(() => String, { nullable: true }) get error(): string | null {
    return this.info.error;
  }
  @Field(() => [FailedImageType], { description: 'Images left out of the index (undecodable or unreadable); the rest is indexed. Counted in imagesDone.' })
  get failedImages(): FailedImageType[] {
    return this.info.failedImages.map((f) => ({ name: f.name, index: f.image, error: f.error }));
  }
}

/** The store's job id inside a Job's global ID. */
export function jobKey(id: string): string {
  const { type, parts } = fromGlobalId(id);
  if (type !== 'Job') throw badInput(`"${id}" is not a job ID`);
  return String(parts[0]);
}

/** What buildIndex and buildAtlas run over. */
@ArgsType()
class JobArgs {
  @Field() model!: string;
  @Field() dataset!: string;
  @Field(() => [String], { nullable: true }) layers?: string[] | null;
  @Field(() => Int, { defaultValue: 9 }) k!: number;
}

/** The unit a feature visualization job optimises for, and the field's options. */
@ArgsType()
class FeatureVisualizationJobArgs extends FeatureVisualizationArgs {
  @Field() model!: string;
  @Field() layer!: string;
  @Field(() => Int) filter!: number;
}

const jobTarget = ({ services }: Context, a: JobArgs) => [findModel(services, a.model), findDataset(services, a.dataset), a.layers ?? undefined, a.k] as const;

@Resolver(() => JobType)
export class JobResolver {
  @Query(() => [JobType], {
    description: 'Every job this server knows: index jobs, oldest first, then the atlas and feature visualization jobs of this process.',
  })
  async jobs(@Ctx() ctx: Context): Promise<JobType[]> {
    return (await allJobs(ctx.services)).map((j) => new JobType(j));
  }

  @Mutation(() => JobType, {
    description:
      'Starts indexing `dataset` with `model` (returns at once): for each channel of `layers` (default: every Conv and Relu), the k images with the highest spatial maximum. An index that exists unchanged is returned as is; an interrupted one resumes.',
  })
  async buildIndex(@Args() args: JobArgs, @Ctx() ctx: Context): Promise<JobType> {
    return new JobType(await buildIndex(ctx.services, ...jobTarget(ctx, args)));
  }

  @Mutation(() => JobType, {
    description:
      "Starts writing the whole-model atlas of `model` over `dataset` (returns at once): for every unit of `layers` (default: every Conv and Relu), its top-k projections beside their image patches, as a static site (an HTML page per layer and per unit, pictures named by their hash) served at the job's `url` when DONE and working from disk too. Builds the index first if need be; an atlas that exists unchanged is returned as is.",
  })
  async buildAtlas(@Args() args: JobArgs, @Ctx() ctx: Context): Promise<JobType> {
    return new JobType(await buildAtlas(ctx.services, ...jobTarget(ctx, args)));
  }

  @Mutation(() => JobType, {
    description:
      "Starts Filter.featureVisualization of `filter` of `layer` of `model` as a job (returns at once), for runs longer than a request may take: its unitsDone/unitsTotal count the steps, its `url` is the PNG's when DONE. The same arguments give the same job; one whose result is cached is DONE at once.",
  })
  async startFeatureVisualization(@Args() { model, layer, filter, ...request }: FeatureVisualizationJobArgs, @Ctx() ctx: Context): Promise<JobType> {
    const m = findModel(ctx.services, model);
    const l = findLayer(m, layer);
    return new JobType(await startFeatureVisualization(ctx.services, findUnit(m, l, filter), request));
  }

  @Mutation(() => JobType, {
    description:
      'Stops a running job: an index job after its current batch (buildIndex resumes it later), an atlas job at its next unit, a feature visualization at its next step.',
  })
  async cancelJob(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<JobType> {
    const info = await cancelJob(ctx.services, jobKey(id));
    if (!info) throw notFound(`no job ${id}`);
    return new JobType(info);
  }

  @Subscription(() => JobType, {
    subscribe: ({ args, context }) => jobUpdates((context as Context).services, jobKey(args.id as string)),
    description: "A job's progress: its state now, then after every batch, ending when the job does.",
  })
  jobProgress(@Root() info: JobInfo, @Arg('id', () => ID) _id: string): JobType {
    return new JobType(info);
  }
}
