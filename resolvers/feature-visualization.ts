/** GraphQL types of feature visualizations (src/service/feature-visualization.ts). */
import { ArgsType, Field, Float, Int, ObjectType } from 'type-graphql';
import type { Services } from '../src/service/services';
import { FEATURE_VISUALIZATION_DEFAULTS, FeatureVisualization, FeatureVisualizationRequest } from '../src/service/feature-visualization';
import { featureVisualizationImageUrl, featureVisualizationTensorUrl } from '../src/service/views';
import type { Objective } from '../src/vocabulary';
import { CacheFor } from './cache-control';
import { FeatureObjective } from './enums';
import { Position, PositionInput } from './inference';

const d = FEATURE_VISUALIZATION_DEFAULTS;

@ArgsType()
export class FeatureVisualizationArgs implements FeatureVisualizationRequest {
  @Field(() => FeatureObjective, { defaultValue: d.objective }) objective!: Objective;
  @Field(() => PositionInput, { nullable: true, description: 'The unit of the map, for objective POSITION.' }) position?: PositionInput;
  @Field(() => Int, {
    nullable: true,
    description: "Side of the optimised image in pixels, stretched to the model's input (default: the input's larger side). At most FEATVIS_MAX_SIZE.",
  })
  size?: number;
  @Field(() => Int, { defaultValue: d.steps, description: 'Optimisation steps (each a forward and a backward pass). At most FEATVIS_MAX_STEPS.' })
  steps!: number;
  @Field(() => Int, {
    defaultValue: d.seed,
    description: 'Seeds the noise the images start from and the random transforms: the same seed gives the same image.',
  })
  seed!: number;
  @Field(() => Int, { defaultValue: d.batch, description: 'Images optimised together, each from its own noise. At most FEATVIS_MAX_BATCH.' }) batch!: number;
  @Field(() => Float, {
    defaultValue: d.diversity,
    description: "Weight of Lucid's diversity term (needs batch ≥ 2): the images' Gram matrices of the layer are pushed apart. 0: none.",
  })
  diversity!: number;
  @Field(() => Float, { defaultValue: d.learningRate, description: "Adam's learning rate (Lucid's 0.05)." }) learningRate!: number;
}

@CacheFor()
@ObjectType('FeatureVisualization', {
  description:
    'Images that maximise a unit (Olah et al., Distill 2017), optimised from noise as Lucid does: Fourier and decorrelated-colour parameterisation, random jitter, scale and rotation at every step, Adam. The result is cached by the model, the unit and every argument.',
})
export class FeatureVisualizationType {
  constructor(
    readonly fv: FeatureVisualization,
    private readonly services: Services,
  ) {}
  @Field(() => FeatureObjective) get objective(): Objective {
    return this.fv.options.objective;
  }
  @Field(() => Position, { nullable: true }) get position(): Position | undefined {
    return this.fv.options.position;
  }
  @Field(() => Int) get size(): number {
    return this.fv.options.size;
  }
  @Field(() => Int) get steps(): number {
    return this.fv.options.steps;
  }
  @Field(() => Int) get seed(): number {
    return this.fv.options.seed;
  }
  @Field(() => Int) get batch(): number {
    return this.fv.options.batch;
  }
  @Field(() => Float) get diversity(): number {
    return this.fv.options.diversity;
  }
  @Field(() => [Float], {
    description: "Per image, the objective's value on it as the model sees it (untransformed): the channel's mean, or the unit's activation.",
  })
  get values(): number[] {
    return this.fv.result.values;
  }
  @Field(() => String, { description: 'PNG: the images side by side, each `size` pixels square, RGB (or grey), 8-bit.' })
  imageUrl(): Promise<string> {
    return featureVisualizationImageUrl(this.services, this.fv);
  }
  @Field(() => String, { description: 'The images as float32 [batch, C, size, size] in [0, 1] (.npy), channels in RGB order.' })
  tensorUrl(): Promise<string> {
    return featureVisualizationTensorUrl(this.services, this.fv);
  }
}
