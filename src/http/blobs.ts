/**
 * /img/<sha256>.png and /tensors/<sha256>.npy: named by a hash that fixes their bytes, so
 * cacheable forever (ETag = the hash; If-None-Match → 304; `Cache-Control: public,
 * max-age=31536000, immutable`).
 *
 * The bytes are the kept blob (src/cache/blobs.ts) or, for projections, made on first fetch from
 * the recipe the URL carries (`?r=`, src/service/renders.ts), also after eviction, a restart or
 * on another replica. Only a recipe signed with URL_SIGNING_KEY (`&s=`: one the API handed out)
 * is made: any other is refused with 403 before anything is computed. Making one counts as a
 * request in flight, with /graphql's (MAX_INFLIGHT_REQUESTS, overload.ts): over it, 503
 * OVERLOADED and Retry-After. Other blobs evicted from every tier answer 404 with a hint:
 * querying the GraphQL field again renders them, byte for byte the same, under the same URL. A
 * 304 needs no bytes, so it is answered even for an evicted blob.
 */
import { Request, RequestHandler, Response, Router } from 'express';
import { BlobKind } from '../cache/blobs';
import { toApiError } from '../errors';
import { log } from '../log';
import { renderBlob } from '../service/renders';
import type { Services } from '../service/services';

const TYPES: Record<BlobKind, string> = { png: 'image/png', npy: 'application/octet-stream' };
const HASH = /^[0-9a-f]{64}$/;

/** `admitted`: the admission of requests in flight (overload.ts) that making a blob goes through. */
export function blobRoutes(services: Services, admitted: RequestHandler): Router {
  const router = Router();
  const serve = (kind: BlobKind) => async (req: Request, res: Response) => {
    const hash = String(req.params.hash);
    const etag = `"${hash}"`;
    const match = req.headers['if-none-match'];
    const headers = { ETag: etag, 'Cache-Control': 'public, max-age=31536000, immutable', 'Content-Type': TYPES[kind] };
    if (HASH.test(hash) && match && match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
      // The name fixes the bytes: a client holding this ETag holds these bytes.
      res.set(headers).status(304).end();
      return;
    }
    const send = (bytes: Uint8Array) => {
      res.set(headers);
      if (kind === 'npy') res.set('Content-Disposition', `attachment; filename="${hash.slice(0, 16)}.npy"`);
      res.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    };
    const kept = await services.blobs.get(kind, hash);
    if (kept) return send(kept);
    const check = services.blobs.recipe(kind, hash, req.query.r, req.query.s);
    if (!check) {
      res
        .status(404)
        .type('text/plain')
        .send(
          `no ${kind} ${hash}: it was never made here or has been evicted from the cache; query the GraphQL field again (e.g. imageUrl) and it is made again under the same URL`,
        );
      return;
    }
    if ('refused' in check) {
      res.status(403).type('text/plain').send(`${kind} ${hash} is not made from this URL: ${check.refused}`);
      return;
    }
    // Admitted like a /graphql request: over MAX_INFLIGHT_REQUESTS it answers 503 itself.
    admitted(req, res, async () => {
      try {
        send(await renderBlob(services, kind, hash, check.recipe));
      } catch (e) {
        const error = toApiError(e);
        const code = error?.extensions.code;
        const status = code === 'NOT_FOUND' ? 404 : code === 'OVERLOADED' ? 503 : 500;
        if (status === 500) log.error({ err: (e as Error)?.message, hash, kind }, 'rendering a blob failed');
        const retryAfterMs = Number(error?.extensions.retryAfterMs);
        if (retryAfterMs > 0) res.set('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
        res
          .status(status)
          .type('text/plain')
          .send(`${kind} ${hash} cannot be made now: ${(e as Error)?.message ?? e}`);
      }
    });
  };
  router.get('/img/:hash.png', serve('png'));
  router.get('/tensors/:hash.npy', serve('npy'));
  return router;
}
