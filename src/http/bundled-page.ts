/**
 * A browser page bundled at build time (scripts/build-*.mjs) into dist/web/<name>/: content-hashed
 * assets named by manifest.json, served with a year's immutable caching, and a small HTML shell
 * that loads them. Both GraphiQL (graphiql.ts) and the gallery (gallery.ts) are such pages.
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { RequestHandler, Response } from 'express';

export interface BundledPage {
  /** The bundle's folder, dist/web/<name>. */
  dir: string;
  /** URL prefix of the assets. */
  assets: string;
  /** Shown in the title and in the "not built" page. */
  title: string;
  /** The element the script mounts on. */
  mountId: string;
  /** The build script that makes the bundle. */
  buildScript: string;
  /** Extra HTML at the end of the body (e.g. a <noscript>). */
  bodyExtra?: string;
}

interface Manifest {
  js: string;
  css: string;
}

/** The folder dist/web/<name>, from dist/src/http/*.js. */
export const bundleDir = (name: string) => path.resolve(__dirname, '..', '..', 'web', name);

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

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

function shell(page: BundledPage, manifest: Manifest): string {
  const asset = (file: string) => escapeAttr(`${page.assets}/${encodeURIComponent(file)}`);
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>convscope · ${page.title}</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="${asset(manifest.css)}" />
    <script type="module" src="${asset(manifest.js)}"></script>
  </head>
  <body>
    <div id="${page.mountId}"><p style="font-family: sans-serif; padding: 1em">Loading ${page.title}…</p></div>${page.bodyExtra ?? ''}
  </body>
</html>
`;
}

function notBuilt(page: BundledPage): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>convscope · ${page.title} not built</title>
  </head>
  <body style="font-family: sans-serif; max-width: 46em; margin: 3em auto; line-height: 1.5">
    <h1>${page.title} is not built</h1>
    <p>The GraphQL API is up (POST <code>/graphql</code>), but the ${page.title} bundle was not
    found in <code>${escapeAttr(page.dir)}</code>.</p>
    <p>Build it with <code>npm run build</code>, or on its own with
    <code>node ${page.buildScript}</code>, then reload this page.</p>
  </body>
</html>
`;
}

/** The assets under page.assets: hashed names, so cached for a year; manifest.json is not served. */
export function bundleAssets(page: BundledPage): RequestHandler[] {
  return [
    (req, res, next) => (path.basename(req.path) === 'manifest.json' ? res.sendStatus(404) : next()),
    express.static(page.dir, { index: false, immutable: true, maxAge: '365d', redirect: false }),
    (_req, res) => res.sendStatus(404),
  ];
}

/** Sends the page's HTML, or 503 with how to build it. */
export function sendPage(res: Response, page: BundledPage): void {
  // Read per request (a small file) so that a bundle built after the server started is served.
  const manifest = readManifest(page.dir);
  res.set('Cache-Control', 'no-cache');
  res.type('html');
  if (!manifest) res.status(503).send(notBuilt(page));
  else res.send(shell(page, manifest));
}
