/** GraphQL subscriptions over WebSocket (graphql-ws protocol) at /graphql. */
import http from 'node:http';
import { ExecutionArgs, getOperationAST, GraphQLError, GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { createContext } from '../context';
import type { Services } from '../service/services';
import type { ApiKeys } from './api-keys';
import { originAllowed } from './cors';
import { formatError } from './errors';
import { wsLimits } from './query-limits';
import { socketSignal } from './signals';

export function subscriptionServer(httpServer: http.Server, schema: GraphQLSchema, services: Services, keys: ApiKeys) {
  const { config } = services;
  // Browsers apply no CORS to WebSockets: the origin is checked here (cors.ts).
  const wss = new WebSocketServer({
    server: httpServer,
    path: '/graphql',
    maxPayload: config.bodyLimitBytes,
    verifyClient: ({ req }: { req: http.IncomingMessage }) => originAllowed(config, req),
  });
  const limits = wsLimits(config);
  const keyed =
    <A extends ExecutionArgs, R>(run: (args: A) => R) =>
    (args: A): R | { errors: GraphQLError[] } => {
      const operation = getOperationAST(args.document, args.operationName);
      const refused = operation && keys.refusal(operation.operation, (args.contextValue as { apiKey?: boolean }).apiKey === true);
      return refused ? { errors: [refused] } : run(args);
    };
  // The query limits, queue bound and cancellation of /graphql apply here too (query-limits.ts, signals.ts),
  // API keys as over HTTP (api-keys.ts: the key is the connection parameter `x-api-key`), and
  // errors leave as they do over HTTP (errors.ts).
  const cleanup = useServer<Record<string, unknown> | undefined, { apiKey?: number }>(
    {
      schema,
      ...limits,
      onConnect: (ctx) => {
        if (!keys.enabled) return true;
        const sent = ctx.connectionParams?.['x-api-key'];
        const index = keys.find(typeof sent === 'string' ? sent : undefined);
        if (sent !== undefined && index < 0) return false; // 4403 Forbidden
        if (index >= 0) ctx.extra.apiKey = index;
        return true;
      },
      onSubscribe: (ctx) => {
        const over = ctx.extra.apiKey === undefined ? undefined : keys.overLimit(ctx.extra.apiKey);
        if (over) return [over];
      },
      execute: keyed(limits.execute),
      subscribe: keyed(limits.subscribe),
      context: (ctx) => ({ ...createContext(services), signal: socketSignal(ctx.extra.socket), apiKey: ctx.extra.apiKey !== undefined }),
      onNext: (_ctx, _id, _payload, _args, result) => (result.errors ? { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) } : undefined),
    },
    wss,
  );
  return {
    async close() {
      await cleanup.dispose();
      wss.close();
    },
  };
}
