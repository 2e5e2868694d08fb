/**
 * /img/<sha256>.png and /tensors/<sha256>.npy: content-addressed, so cacheable forever
 * (ETag = the hash; If-None-Match → 304; `Cache-Control: public, max-age=31536000, immutable`).
 *
 * Blobs live in the bounded cache (src/cache/blobs.ts): one evicted from every tier answers 404
 * with a hint. Querying the GraphQL field that made it renders it again, byte for byte the same,
 * under the same URL. A 304 needs no bytes, so it is answered even for an evicted blob.
 */
import { Request, Response, Router } from 'express';
import { BlobKind, BlobStore } from '../cache/blobs';

const TYPES: Record<BlobKind, string> = { png: 'image/png', npy: 'application/octet-stream' };
const HASH = /^[0-9a-f]{64}$/;

export function blobRoutes(blobs: BlobStore): Router {
  const router = Router();
  const serve = (kind: BlobKind) => async (req: Request, res: Response) => {
    const hash = String(req.params.hash);
    const etag = `"${hash}"`;
    const match = req.headers['if-none-match'];
    const headers = { ETag: etag, 'Cache-Control': 'public, max-age=31536000, immutable', 'Content-Type': TYPES[kind] };
    if (HASH.test(hash) && match && match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
      // The name is the content's hash: a client holding this ETag holds these bytes.
      res.set(headers).status(304).end();
      return;
    }
    const bytes = await blobs.get(kind, hash);
    if (!bytes) {
      res
        .status(404)
        .type('text/plain')
        .send(`no ${kind} ${hash}: it was never made here or has been evicted from the cache; query the GraphQL field again (e.g. imageUrl) and it is made again under the same URL`);
      return;
    }
    res.set(headers);
    if (kind === 'npy') res.set('Content-Disposition', `attachment; filename="${hash.slice(0, 16)}.npy"`);
    res.send(bytes);
  };
  router.get('/img/:hash.png', serve('png'));
  router.get('/tensors/:hash.npy', serve('npy'));
  return router;
}
