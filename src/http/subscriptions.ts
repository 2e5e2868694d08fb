/** GraphQL subscriptions over WebSocket (graphql-ws protocol) at /graphql. */
import http from 'node:http';
import { GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { createContext, Services } from '../context';

export function subscriptionServer(httpServer: http.Server, schema: GraphQLSchema, services: Services) {
  const wss = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const cleanup = useServer({ schema, context: () => createContext(services) }, wss);
  return {
    async close() {
      await cleanup.dispose();
      wss.close();
    },
  };
}
