/** The Relay `Node` interface and opaque global IDs. */
import { Field, ID, InterfaceType } from 'type-graphql';
import { NoCache } from './cache-control';

/** The GraphQL object type of a Node's value: its class's static `graphqlName`. */
export const nodeTypeName = (value: { constructor: unknown }) => (value.constructor as { graphqlName: string }).graphqlName;

// A Job must not be cached, a Model may: node(id) applies its object's hint (hintFromRuntimeType).
@NoCache()
@InterfaceType('Node', {
  description: 'An object with a global ID, fetchable with `Query.node(id)`.',
  resolveType: nodeTypeName,
})
export abstract class NodeInterface {
  @Field(() => ID, { description: 'Opaque global ID.' })
  id!: string;
}

export { fromGlobalId, toGlobalId } from '../src/ids';
