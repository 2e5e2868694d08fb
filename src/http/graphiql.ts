/**
 * GraphiQL 5 for browsers at GET /graphql, working with no internet: the page, React, monaco and
 * its web workers are bundled at build time (scripts/build-graphiql.mjs) into dist/web/graphiql/
 * and served from /graphiql/*. Requests that are not a browser asking for the page (POSTs, GETs
 * with a `query`, clients that do not accept text/html) fall through to Apollo.
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { Request, Router } from 'express';

/** dist/web/graphiql, from dist/src/http/graphiql.js. */
export const GRAPHIQL_DIR = path.resolve(__dirname, '..', '..', 'web', 'graphiql');

/** Where the page's assets are served. */
export const GRAPHIQL_ASSETS = '/graphiql';

interface Manifest {
  js: string;
  css: string;
}

function readManifest(dir: string): Manifest | undefined {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Partial<Manifest>;
    if (typeof manifest.js !== 'string' || typeof manifest.css !== 'string') return undefined;
    if (!fs.existsSync(path.join(dir, manifest.js)) || !fs.existsSync(path.join(dir, manifest.css))) return undefined;
    return manifest as Manifest;
  } catch {
    return undefined;
  }
}

/** A browser navigating to /graphql, as opposed to a GraphQL GET request or an API client. */
export function wantsGraphiQL(req: Request): boolean {
  if (req.query.query !== undefined) return false;
  const accept = req.get('accept') ?? '';
  return accept.toLowerCase().includes('text/html');
}

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function graphiqlPage(manifest: Manifest): string {
  const asset = (file: string) => escapeAttr(`${GRAPHIQL_ASSETS}/${encodeURIComponent(file)}`);
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>convscope · GraphiQL</title>
    <link rel="stylesheet" href="${asset(manifest.css)}" />
    <script type="module" src="${asset(manifest.js)}"></script>
  </head>
  <body>
    <div id="graphiql"><p style="font-family: sans-serif; padding: 1em">Loading GraphiQL…</p></div>
  </body>
</html>
`;
}

export function missingBundlePage(dir: string): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>convscope · GraphiQL not built</title>
  </head>
  <body style="font-family: sans-serif; max-width: 46em; margin: 3em auto; line-height: 1.5">
    <h1>GraphiQL is not built</h1>
    <p>The GraphQL API is up at this address (POST <code>/graphql</code>), but the GraphiQL bundle
    was not found in <code>${escapeAttr(dir)}</code>.</p>
    <p>Build it with <code>npm run build</code> (which runs <code>tsc</code> and then
    <code>node scripts/build-graphiql.mjs</code>), or on its own with
    <code>node scripts/build-graphiql.mjs</code>, then reload this page.</p>
  </body>
</html>
`;
}

export function graphiqlRoutes(dir: string = GRAPHIQL_DIR): Router {
  const router = Router();

  // Hashed file names: safe to cache for a year. manifest.json is not needed by browsers.
  router.use(
    GRAPHIQL_ASSETS,
    (req, res, next) => (path.basename(req.path) === 'manifest.json' ? res.sendStatus(404) : next()),
    express.static(dir, { index: false, immutable: true, maxAge: '365d', redirect: false }),
    (_req, res) => res.sendStatus(404),
  );

  router.get('/graphql', (req, res, next) => {
    if (!wantsGraphiQL(req)) return next();
    // Read per request (a small file) so that a bundle built after the server started is served.
    const manifest = readManifest(dir);
    res.set('Cache-Control', 'no-cache');
    res.vary('Accept');
    res.type('html');
    if (!manifest) res.status(503).send(missingBundlePage(dir));
    else res.send(graphiqlPage(manifest));
  });

  return router;
}
