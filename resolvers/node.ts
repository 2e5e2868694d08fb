/** The Relay `Node` interface and opaque global IDs. */
import { Field, ID, InterfaceType } from 'type-graphql';
import { badInput } from '../src/errors';
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

/** An ID is the base64url of a JSON array: [typename, ...parts]. */
export function toGlobalId(type: string, ...parts: (string | number)[]): string {
  return Buffer.from(JSON.stringify([type, ...parts])).toString('base64url');
}

export function fromGlobalId(id: string): { type: string; parts: (string | number)[] } {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(id, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  if (!Array.isArray(decoded) || typeof decoded[0] !== 'string' || decoded.some((p) => typeof p !== 'string' && typeof p !== 'number')) {
    throw badInput(`"${id}" is not a convscope ID: use an \`id\` returned by the API`);
  }
  return { type: decoded[0], parts: decoded.slice(1) };
}
