/** Model.invariance (ZF Fig. 5): distances of features and the class probability as an image is moved (src/service/invariance.ts). */
import { Arg, Ctx, Field, FieldResolver, Float, Int, ObjectType, Resolver, Root } from 'type-graphql';
import { Context } from '../src/context';
import { Invariance, invariance, INVARIANCE_DEFAULTS, invariancePlotUrl, InvarianceStep, targetLabel } from '../src/service/invariance';
import type { TargetSource, Transform } from '../src/vocabulary';
import { CacheFor, InheritMaxAge } from './cache-control';
import { COST } from './complexity';
import { InvarianceTransform, TargetSourceEnum } from './enums';
import { ImageInput, resolveImage } from './image.resolver';
import { ModelType } from './types';

@InheritMaxAge()
@ObjectType('InvarianceStep')
export class InvarianceStepType implements InvarianceStep {
  @Field(() => Float, { description: 'Pixels (TRANSLATE), factor (SCALE) or degrees (ROTATE); step 0 is the identity.' }) amount!: number;
  @Field(() => [Float], {
    description:
      "Per layer (Invariance.layers' order): the Euclidean distance between its activation on the transformed image and on the original, all units at all positions as one vector.",
  })
  distances!: number[];
  @Field(() => [Float], { description: "distances divided by the norm of the original's activation." }) relativeDistances!: number[];
  @Field(() => Float, { description: 'The probability of targetClass on the transformed image.' }) probability!: number;
}

@CacheFor()
@ObjectType('Invariance', {
  description:
    "ZF Fig. 5: the image transformed as the model sees it (its pixels at the input size; bilinear samples about the centre; outside the image, the sidecar's pad value, else black), in `steps` evenly spaced amounts from the identity.",
})
export class InvarianceType {
  constructor(readonly invariance: Invariance) {}
  @Field(() => InvarianceTransform) get transform(): Transform {
    return this.invariance.transform;
  }
  @Field(() => [String], { description: 'The layers the distances are of.' }) get layers(): string[] {
    return this.invariance.layers.map((l) => l.name);
  }
  @Field(() => Int) get targetClass(): number {
    return this.invariance.targetClass;
  }
  @Field() get targetLabel(): string {
    return targetLabel(this.invariance);
  }
  @Field(() => TargetSourceEnum) get targetSource(): TargetSource {
    return this.invariance.targetSource;
  }
  @Field(() => [InvarianceStepType]) get steps(): InvarianceStep[] {
    return this.invariance.steps;
  }
}

@Resolver(() => InvarianceType)
export class InvarianceResolver {
  @FieldResolver(() => String, { description: 'PNG plot: one panel per layer (distance over amount), then the probability of targetClass.' })
  imageUrl(@Root() root: InvarianceType, @Ctx() ctx: Context): Promise<string> {
    return invariancePlotUrl(ctx.services, root.invariance);
  }
}

@Resolver(() => ModelType)
export class ModelInvarianceResolver {
  @FieldResolver(() => InvarianceType, {
    description:
      'Invariance to translation, scaling or rotation (ZF §4.2, Fig. 5). Errors: BAD_USER_INPUT for steps outside 2 … MAX_INVARIANCE_STEPS, `to` out of range, more than 4 layers or a targetClass out of range; NOT_FOUND for an unknown layer.',
    complexity: ({ args, childComplexity }) => COST.predict * (args.steps ?? INVARIANCE_DEFAULTS.steps) + childComplexity,
  })
  async invariance(
    @Root() root: ModelType,
    @Arg('image', () => ImageInput) imageInput: ImageInput,
    @Arg('transform', () => InvarianceTransform) transform: Transform,
    @Arg('steps', () => Int, { defaultValue: INVARIANCE_DEFAULTS.steps, description: 'Amounts, from the identity to `to`.' }) steps: number,
    @Arg('to', () => Float, { nullable: true, description: 'The last amount; default: a quarter of the input height (TRANSLATE), 1.8 (SCALE), 360 (ROTATE).' })
    to: number | undefined,
    @Arg('layers', () => [String], {
      nullable: true,
      description: 'The layers whose features are compared (1 to 4); default: the first and the last ReLU (ZF: layers 1 and 7).',
    })
    layers: string[] | undefined,
    @Arg('targetClass', () => Int, {
      nullable: true,
      description: "Default: the image's dataset label when the model has that class, else the original's most probable class.",
    })
    targetClass: number | undefined,
    @Ctx() ctx: Context,
  ): Promise<InvarianceType> {
    const image = await resolveImage(ctx, imageInput);
    const request = { transform, steps, to: to ?? undefined, layers: layers ?? undefined, targetClass: targetClass ?? undefined };
    return new InvarianceType(await invariance(ctx, root.model, image, request));
  }
}
