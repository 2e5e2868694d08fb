/**
 * /embed.js (the web components of src/web/embed/) and /client.js (the typed client of
 * src/web/client/), bundled at build time by scripts/build-web.mjs into dist/web/embed/. Their
 * names are fixed, since other pages name them, so they are cached for minutes, not a year.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Router } from 'express';
import { bundleDir } from './bundled-page';

export const EMBED_DIR = bundleDir('embed');

export function embedRoutes(dir: string = EMBED_DIR): Router {
  const router = Router();
  for (const file of ['embed.js', 'client.js']) {
    router.get(`/${file}`, (_req, res) => {
      const full = path.join(dir, file);
      if (!fs.existsSync(full)) {
        res.status(503).type('text/plain').send(`/${file} is not built: run npm run build (scripts/build-web.mjs)`);
        return;
      }
      res.set({ 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=300' });
      res.sendFile(full);
    });
  }
  return router;
}
