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
import compression from 'compression';
import express, { ErrorRequestHandler } from 'express';
import { apolloCache, responseCache, servedFingerprint } from './cache/apollo';
import { Config } from './config';
import { Context, createContext } from './context';
import { apiKeys } from './http/api-keys';
import { atlasRoutes } from './http/atlas';
import { blobRoutes } from './http/blobs';
import { cors } from './http/cors';
import { datasetRoutes } from './http/datasets';
import { embedRoutes } from './http/embed';
import { subscriptionServer } from './http/subscriptions';
import { startAutoIndexes } from './service/auto-index';
import { graphiqlRoutes } from './http/graphiql';
import { galleryRoutes } from './http/gallery';
import { createMetrics } from './http/metrics';
import { formatError } from './http/errors';
import { admission, overloadPlugin } from './http/overload';
import { queryLimits } from './http/query-limits';
import { requestSignal } from './http/signals';
import { log } from './log';
import { publishJobProgress } from './pubsub';
import { buildAppSchema } from './schema';
import { createServices, Services } from './service/services';

export interface RunningServer {
  url: string;
  services: Services;
  close(): Promise<void>;
}

export async function startServer(config: Config, services?: Services): Promise<RunningServer> {
  services ??= await createServices(config);
  if (config.redisUrl && !config.urlSigningKey) {
    log.warn(
      'REDIS_URL without URL_SIGNING_KEY: this replica signs projection URLs with a key of its own (CACHE_DIR/url-signing.key), so the other replicas refuse the URLs it hands out (403); give every replica the same URL_SIGNING_KEY',
    );
  }
  const stopProgress = publishJobProgress([services.jobs, services.processJobs], config.redisUrl); // to jobProgress subscriptions, of every replica with REDIS_URL
  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);

  // Hardening: query cost/depth/alias/directive/token limits (src/http/query-limits.ts), 503 + Retry-After (overload.ts).
  const limits = queryLimits<Context>(config);
  const keys = apiKeys(config); // optional API keys and their rate limits (src/http/api-keys.ts)
  const apollo = new ApolloServer<Context>({
    schema: buildAppSchema(),
    introspection: true,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    allowBatchedHttpRequests: false,
    // main.ts handles SIGTERM/SIGINT (graceful shutdown); Apollo's own handler would stop the
    // server a second time and re-raise the signal.
    stopOnTerminationSignals: false,
    formatError,
    cache: apolloCache(services.cache), // APQ (and any Apollo cache) over the tiered store: shared through Redis
    validationRules: limits.validationRules,
    parseOptions: limits.parseOptions,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownTimeoutMs }),
      ApolloServerPluginLandingPageDisabled(),
      ...limits.plugins,
      overloadPlugin<Context>(),
      keys.plugin<Context>(),
    ],
  });
  // Whole-response cache for operations whose @cacheControl hints allow it, keyed also by the served models and datasets.
  // Computed per request: the served models change when MODELS_DIR does (a few hashes' work).
  // PUBLIC_URL and the URL signing key are in the key too: cached answers carry absolute, signed URLs.
  const fingerprint = () =>
    `${servedFingerprint(services.registry.models.values(), services.datasets.datasets.values())} ${config.publicUrl} ${services.blobs.signingKeyId}`;
  if (config.responseCache) apollo.addPlugin(responseCache<Context>(services.cache, fingerprint));
  await apollo.start();
  const metrics = createMetrics(services);

  app.use(cors(config)); // CORS_ORIGINS, for every route (src/http/cors.ts)
  app.use(compression()); // gzip or brotli for what compresses (JSON, HTML, JS, CSS; not PNGs)
  const admitted = admission(config.maxInflightRequests); // /graphql requests and blobs made from a recipe
  app.use(blobRoutes(services, admitted));
  app.use(datasetRoutes(services.datasets));
  app.use('/atlas', atlasRoutes(config.atlasDir)); // the atlases buildAtlas wrote, as static sites
  app.get('/metrics', metrics.route);
  app.use(graphiqlRoutes());
  app.use(galleryRoutes()); // the gallery page at /
  app.use(embedRoutes()); // /embed.js (web components) and /client.js (the typed client)
  app.use(
    '/graphql',
    admitted, // at most MAX_INFLIGHT_REQUESTS at once, refused before the body is read
    keys.http, // a wrong key, or one over its rate, refused before the body is read
    express.json({ limit: config.bodyLimitBytes }),
    // A body express.json did not parse (text/plain, form posts) is left unset; Apollo then
    // answers 500. Set, it reaches Apollo's CSRF check and content-type handling: 400.
    (req, _res, next) => {
      if (!('body' in req)) (req as { body?: unknown }).body = undefined;
      next();
    },
    requestSignal(config.requestTimeoutMs),
    expressMiddleware(apollo, {
      context: async ({ res }) => ({ ...createContext(services), signal: res.locals.signal as AbortSignal | undefined, apiKey: res.locals.apiKey === true }),
    }),
  );
  app.get('/healthz', (_req, res) => {
    const { engine } = services;
    res.json({
      ok: true,
      models: services.registry.models.size,
      modelErrors: services.registry.errors.length,
      // backpressure (MAX_QUEUED_ITEMS): what waits now, and what was refused or dropped so far
      inference: { queued: engine.queued, limit: config.maxQueuedItems, refused: engine.budget.refused, dropped: engine.stats.dropped },
      requests: { inFlight: admitted.inFlight, limit: config.maxInflightRequests, refused: admitted.refused },
      // with the job queue: whether this process takes chunks (INDEX_IN_API), and those it took
      indexQueue: services.jobs.queue && { working: config.indexInApi, chunks: services.jobs.queue.counts },
    });
  });
  const bodyErrors: ErrorRequestHandler = (err, _req, res, next) => {
    if (err?.type === 'entity.too.large') {
      res.status(413).json({
        errors: [
          {
            message: `request body over the limit of ${config.bodyLimitBytes} bytes (BODY_LIMIT_MB); upload large images with uploadImage`,
            extensions: { code: 'BAD_USER_INPUT' },
          },
        ],
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
  const subscriptions = subscriptionServer(httpServer, buildAppSchema(), services, keys);
  await services.jobs.resumeInterrupted();
  if (services.jobs.queue && config.indexInApi) services.jobs.work(config.indexWorkerChunks); // else only `convscope worker`s take queued chunks
  await startAutoIndexes(services);
  // A model dropped in later gets the indexes its sidecar asks for too.
  const stopRescans =
    config.modelsRescanSeconds > 0 ? services.registry.watch(config.modelsRescanSeconds * 1000, () => startAutoIndexes(services)) : () => undefined;
  log.info({ url: `${url}/graphql`, backend: config.backend, models: services.registry.names() }, 'convscope ready');
  return {
    url,
    services,
    async close() {
      stopRescans();
      await services.jobs.close(); // running index jobs stop at their next checkpoint, queued chunks once merged
      await services.processJobs.close(); // running atlas and feature visualization jobs stop at their next unit (step)
      await stopProgress();
      await subscriptions.close();
      await apollo.stop();
      await services.engine.close();
      await services.inference.decodePool?.close();
      metrics.close();
      await services.cache.close();
      await services.jobs.store.close();
    },
  };
}
