/**
 * GraphiQL 5 for browsers at GET /graphql, working with no internet: the page, React, monaco and
 * its web workers are bundled at build time (scripts/build-web.mjs) into dist/web/graphiql/
 * and served from /graphiql/*. Requests that are not a browser asking for the page (POSTs, GETs
 * with a `query`, clients that do not accept text/html) fall through to Apollo.
 */
import { Request, Router } from 'express';
import { bundleAssets, bundleDir, BundledPage, sendPage } from './bundled-page';

export const GRAPHIQL_DIR = bundleDir('graphiql');

/** A browser navigating to /graphql, as opposed to a GraphQL GET request or an API client. */
export function wantsGraphiQL(req: Request): boolean {
  if (req.query.query !== undefined) return false;
  const accept = req.get('accept') ?? '';
  return accept.toLowerCase().includes('text/html');
}

export function graphiqlRoutes(dir: string = GRAPHIQL_DIR): Router {
  const page: BundledPage = { dir, assets: '/graphiql', title: 'GraphiQL', mountId: 'graphiql', buildScript: 'scripts/build-web.mjs' };
  const router = Router();
  router.use(page.assets, ...bundleAssets(page));
  router.get('/graphql', (req, res, next) => {
    if (!wantsGraphiQL(req)) return next();
    res.vary('Accept');
    sendPage(res, page);
  });
  return router;
}
