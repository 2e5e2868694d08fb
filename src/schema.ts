/** The executable schema, built from the type-graphql classes in resolvers/. */
import 'reflect-metadata';
import { GraphQLSchema, lexicographicSortSchema, printSchema, specifiedDirectives } from 'graphql';
import { buildSchemaSync } from 'type-graphql';
import { pubSub } from './pubsub';
import { BackendResolver } from '../resolvers/backend.resolver';
import { cacheControlDirective } from '../resolvers/cache-control';
import { DatasetResolver } from '../resolvers/dataset.resolver';
import { FilterResolver } from '../resolvers/filter.resolver';
import { ImageResolver } from '../resolvers/image.resolver';
import { JobResolver } from '../resolvers/job.resolver';
import { ProjectionResolver } from '../resolvers/inference';
import { LayerResolver } from '../resolvers/layer.resolver';
import { ModelResolver } from '../resolvers/model.resolver';
import { NodeResolver } from '../resolvers/node.resolver';
import { ModelPredictionResolver, OcclusionMapResolver, OcclusionResolver } from '../resolvers/prediction';
import { CompareResolver, ModelComparisonResolver, UnitMatchResolver } from '../resolvers/compare.resolver';
import { InvarianceResolver, ModelInvarianceResolver } from '../resolvers/invariance.resolver';
import { LayerUnitsResolver, SelectivityResolver, TopUnitsResolver, UnitActivationResolver } from '../resolvers/unit-analysis.resolver';
import { TopActivationResolver, TopActivationsGridResolver, TopActivationsResolver } from '../resolvers/top-activation.resolver';

let schema: GraphQLSchema | undefined;

export function buildAppSchema(): GraphQLSchema {
  schema ??= buildSchemaSync({
    resolvers: [
      ModelResolver,
      LayerResolver,
      FilterResolver,
      NodeResolver,
      ImageResolver,
      ProjectionResolver,
      ModelPredictionResolver,
      OcclusionResolver,
      OcclusionMapResolver,
      DatasetResolver,
      JobResolver,
      TopActivationsResolver,
      TopActivationResolver,
      TopActivationsGridResolver,
      BackendResolver,
      SelectivityResolver,
      LayerUnitsResolver,
      TopUnitsResolver,
      UnitActivationResolver,
      CompareResolver,
      ModelComparisonResolver,
      UnitMatchResolver,
      ModelInvarianceResolver,
      InvarianceResolver,
    ],
    pubSub, // subscriptions (src/pubsub.ts)
    validate: false,
    directives: [...specifiedDirectives, cacheControlDirective], // @cacheControl hints (resolvers/cache-control.ts)
  });
  return schema;
}

/** The SDL committed as schema.graphql (sorted, so that it diffs well). */
export function schemaSdl(): string {
  return printSchema(lexicographicSortSchema(buildAppSchema())) + '\n';
}
