/** GraphQL subscriptions over WebSocket (graphql-ws protocol) at /graphql. */
import http from 'node:http';
import { GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { createContext, Services } from '../context';
import { socketSignal, wsLimits } from './limits';

export function subscriptionServer(httpServer: http.Server, schema: GraphQLSchema, services: Services) {
  const wss = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: services.config.bodyLimitBytes });
  // The query limits, queue bound and cancellation of /graphql apply here too (http/limits.ts).
  const cleanup = useServer(
    { schema, ...wsLimits(services.config), context: (ctx) => ({ ...createContext(services), signal: socketSignal(ctx.extra.socket) }) },
    wss,
  );
  return {
    async close() {
      await cleanup.dispose();
      wss.close();
    },
  };
}
