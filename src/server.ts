/**
 * The HTTP server: Apollo Server on express 5 at /graphql, GraphiQL for browsers at the same
 * address, and the content-addressed /img and /tensors routes.
 */
import 'reflect-metadata';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express, { ErrorRequestHandler } from 'express';
import { GraphQLFormattedError } from 'graphql';
import { BlobStore } from './cache/blobs';
import { Config } from './config';
import { Context, createContext, Services } from './context';
import { Engine } from './engine/engine';
import { openRuntime } from './engine/runtime';
import { blobRoutes } from './http/blobs';
import { graphiqlRoutes } from './http/graphiql';
import { log } from './log';
import { ImageStore } from './images/store';
import { Inference } from './inference';
import { ModelRegistry } from './registry/models';
import { buildAppSchema } from './schema';

export interface RunningServer {
  url: string;
  services: Services;
  close(): Promise<void>;
}

export async function createServices(config: Config): Promise<Services> {
  log.level = config.logLevel;
  const runtime = await openRuntime(config.backend, config.threads);
  const engine = new Engine(runtime, { maxBatch: config.maxBatch, windowMs: config.batchWindowMs });
  const registry = await ModelRegistry.load(config.modelsDir, engine);
  const blobs = new BlobStore(config.cacheDir, config.blobMemoryBytes);
  const images = new ImageStore(config.cacheDir, config);
  return { config, engine, registry, blobs, images, inference: new Inference(engine, config) };
}

/** Errors the API did not mean to raise keep their message but lose any stack or internals. */
export function formatError(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const { stacktrace: _stack, exception: _exception, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
  return { ...formatted, extensions: { ...extensions, code: extensions.code ?? 'INTERNAL_SERVER_ERROR' } };
}

export async function startServer(config: Config, services?: Services): Promise<RunningServer> {
  services ??= await createServices(config);
  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);

  const apollo = new ApolloServer<Context>({
    schema: buildAppSchema(),
    introspection: true,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    formatError,
    plugins: [ApolloServerPluginDrainHttpServer({ httpServer }), ApolloServerPluginLandingPageDisabled()],
  });
  await apollo.start();

  app.use(blobRoutes(services.blobs));
  app.use(graphiqlRoutes());
  app.use('/graphql', express.json({ limit: config.bodyLimitBytes }), expressMiddleware(apollo, { context: async () => createContext(services) }));
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, models: services.registry.models.size, modelErrors: services.registry.errors.length });
  });
  const bodyErrors: ErrorRequestHandler = (err, _req, res, next) => {
    if (err?.type === 'entity.too.large') {
      res.status(413).json({
        errors: [{ message: `request body over the limit of ${config.bodyLimitBytes} bytes (BODY_LIMIT_MB); upload large images with uploadImage`, extensions: { code: 'BAD_USER_INPUT' } }],
      });
    } else if (err?.type === 'entity.parse.failed') {
      res.status(400).json({ errors: [{ message: `request body is not valid JSON: ${err.message}`, extensions: { code: 'BAD_REQUEST' } }] });
    } else next(err);
  };
  app.use(bodyErrors);

  await new Promise<void>((resolve) => httpServer.listen(config.port, config.host, resolve));
  const { port } = httpServer.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const url = `http://${host}:${port}`;
  log.info({ url: `${url}/graphql`, backend: config.backend, models: services.registry.names() }, 'convscope ready');
  return {
    url,
    services,
    async close() {
      await apollo.stop();
      await services.engine.close();
    },
  };
}
