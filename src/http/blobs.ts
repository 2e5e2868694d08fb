/**
 * /img/<sha256>.png and /tensors/<sha256>.npy: content-addressed, so cacheable forever
 * (ETag = the hash; If-None-Match → 304).
 */
import { Router } from 'express';
import { BlobKind, BlobStore } from '../cache/blobs';

const TYPES: Record<BlobKind, string> = { png: 'image/png', npy: 'application/octet-stream' };

export function blobRoutes(blobs: BlobStore): Router {
  const router = Router();
  const serve = (kind: BlobKind) => (req: import('express').Request, res: import('express').Response) => {
    const hash = String(req.params.hash);
    const etag = `"${hash}"`;
    const bytes = blobs.get(kind, hash);
    if (!bytes) {
      res.status(404).type('text/plain').send(`no ${kind} ${hash}: blobs are made by GraphQL fields such as imageUrl; query the field again`);
      return;
    }
    res.set({ ETag: etag, 'Cache-Control': 'public, max-age=31536000, immutable', 'Content-Type': TYPES[kind] });
    const match = req.headers['if-none-match'];
    if (match && match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
      res.status(304).end();
      return;
    }
    if (kind === 'npy') res.set('Content-Disposition', `attachment; filename="${hash.slice(0, 16)}.npy"`);
    res.send(bytes);
  };
  router.get('/img/:hash.png', serve('png'));
  router.get('/tensors/:hash.npy', serve('npy'));
  return router;
}
