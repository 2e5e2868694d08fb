/** Relay cursor connections: one generic type factory and one pagination function. */
import { ArgsType, ClassType, Field, Int, ObjectType } from 'type-graphql';
import { badInput } from '../src/errors';
import { InheritMaxAge } from './cache-control';

@InheritMaxAge()
@ObjectType({ description: 'Relay page information.' })
export class PageInfo {
  @Field() hasNextPage!: boolean;
  @Field() hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true }) startCursor!: string | null;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

@ArgsType()
export class PageArgs {
  @Field(() => Int, { nullable: true, description: 'How many items (1 to the server maximum, default 20).' })
  first?: number;

  @Field(() => String, { nullable: true, description: 'A cursor from a previous page: items after it.' })
  after?: string;
}

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  nodes: T[];
  pageInfo: PageInfo;
  totalCount: number;
}

export function Connection<T extends object>(NodeType: ClassType<T>, name: string) {
  @InheritMaxAge()
  @ObjectType(`${name}Edge`)
  class Edge {
    @Field() cursor!: string;
    @Field(() => NodeType) node!: T;
  }

  @InheritMaxAge()
  @ObjectType(`${name}Connection`, { description: `A page of ${name} items.` })
  class ConnectionType implements Page<T> {
    @Field(() => [Edge]) edges!: Edge[];
    @Field(() => [NodeType], { description: 'The nodes of `edges`, for clients that need no cursors.' }) nodes!: T[];
    @Field(() => PageInfo) pageInfo!: PageInfo;
    @Field(() => Int) totalCount!: number;
  }
  return ConnectionType;
}

const cursorOf = (offset: number) => Buffer.from(`offset:${offset}`).toString('base64url');

function offsetOf(cursor: string): number {
  const match = /^offset:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw badInput(`"${cursor}" is not a cursor of this connection: pass an \`endCursor\` or edge \`cursor\` as \`after\``);
  return Number(match[1]);
}

/** One page of `items` per the Relay spec (forward pagination). */
export function paginate<T>(items: readonly T[], args: PageArgs, maxFirst: number): Page<T> {
  const first = args.first ?? Math.min(20, maxFirst);
  if (!Number.isInteger(first) || first < 1 || first > maxFirst) {
    throw badInput(`\`first\` must be between 1 and ${maxFirst}, got ${args.first}`, { argument: 'first' });
  }
  const start = args.after !== undefined && args.after !== null ? offsetOf(args.after) + 1 : 0;
  const slice = items.slice(start, start + first);
  const edges = slice.map((node, i) => ({ cursor: cursorOf(start + i), node }));
  return {
    edges,
    nodes: slice,
    totalCount: items.length,
    pageInfo: {
      hasNextPage: start + first < items.length,
      hasPreviousPage: start > 0,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges[edges.length - 1]?.cursor ?? null,
    },
  };
}
