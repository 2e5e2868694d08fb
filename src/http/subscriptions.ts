/** GraphQL subscriptions over WebSocket (graphql-ws protocol) at /graphql. */
import http from 'node:http';
import { GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { createContext } from '../context';
import type { Services } from '../service/services';
import { formatError } from './errors';
import { wsLimits } from './query-limits';
import { socketSignal } from './signals';

export function subscriptionServer(httpServer: http.Server, schema: GraphQLSchema, services: Services) {
  const wss = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: services.config.bodyLimitBytes });
  // The query limits, queue bound and cancellation of /graphql apply here too (query-limits.ts, signals.ts),
  // and errors leave as they do over HTTP (errors.ts).
  const cleanup = useServer(
    {
      schema,
      ...wsLimits(services.config),
      context: (ctx) => ({ ...createContext(services), signal: socketSignal(ctx.extra.socket) }),
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
