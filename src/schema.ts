/** The executable schema, built from the type-graphql classes in resolvers/. */
import 'reflect-metadata';
import { GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchemaSync } from 'type-graphql';
import { FilterResolver } from '../resolvers/filter.resolver';
import { ImageResolver } from '../resolvers/image.resolver';
import { ProjectionResolver } from '../resolvers/inference';
import { LayerResolver } from '../resolvers/layer.resolver';
import { ModelResolver } from '../resolvers/model.resolver';
import { NodeResolver } from '../resolvers/node.resolver';

let schema: GraphQLSchema | undefined;

export function buildAppSchema(): GraphQLSchema {
  schema ??= buildSchemaSync({
    resolvers: [ModelResolver, LayerResolver, FilterResolver, NodeResolver, ImageResolver, ProjectionResolver],
    validate: false,
  });
  return schema;
}

/** The SDL committed as schema.graphql (sorted, so that it diffs well). */
export function schemaSdl(): string {
  return printSchema(lexicographicSortSchema(buildAppSchema())) + '\n';
}
