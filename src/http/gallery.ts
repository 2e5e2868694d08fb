/**
 * The gallery page at GET / (src/web/gallery/), bundled at build time by scripts/build-web.mjs
 * into dist/web/gallery/ and served from /gallery/*. The page talks to the server only through
 * the public GraphQL API.
 */
import { Router } from 'express';
import { bundleAssets, bundleDir, BundledPage, sendPage } from './bundled-page';

export const GALLERY_DIR = bundleDir('gallery');

export function galleryRoutes(dir: string = GALLERY_DIR): Router {
  const page: BundledPage = {
    dir,
    assets: '/gallery',
    title: 'gallery',
    mountId: 'gallery',
    buildScript: 'scripts/build-web.mjs',
    bodyExtra: '\n    <noscript>The gallery needs JavaScript; the API is at <a href="/graphql">/graphql</a>.</noscript>',
  };
  const router = Router();
  router.use(page.assets, ...bundleAssets(page));
  // The page's state is in the query string (?model=…&layer=…&filter=…): one HTML for all.
  router.get('/', (_req, res) => sendPage(res, page));
  return router;
}
