/**
 * /atlas/<id>/…: the atlases buildAtlas wrote under ATLAS_DIR (service/atlas.ts), as the static
 * sites they are. A folder appears only complete (it is written aside, in ATLAS_DIR/.tmp, which
 * is not served, and moved in place) and is named by its inputs, so its files never change:
 * cacheable forever.
 */
import express, { Router } from 'express';

export function atlasRoutes(atlasDir: string): Router {
  const router = Router();
  router.use(express.static(atlasDir, { dotfiles: 'ignore', index: 'index.html', immutable: true, maxAge: '365d' }));
  router.use((_req, res) => {
    res.status(404).type('text/plain').send('no such file in an atlas: buildAtlas returns the URL of a finished one');
  });
  return router;
}
