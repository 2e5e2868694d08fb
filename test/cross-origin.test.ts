/**
 * convscope used from pages of other origins, in a real (Debian) Chromium: a page served from
 * another loopback port that CORS_ORIGINS allows calls /graphql, draws an /img result into a
 * canvas and reads its pixels back; a page from an origin not listed is refused both.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from 'node:assert/strict';
import { Browser, BrowserContext } from 'playwright-core';
import { offlineBrowser, pageServer } from './browser';
import { startTestServer } from './helpers';

let convscope: Awaited<ReturnType<typeof startTestServer>>;
let allowed: Awaited<ReturnType<typeof pageServer>>;
let other: Awaited<ReturnType<typeof pageServer>>;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  allowed = await pageServer('<!doctype html><title>dashboard</title>');
  other = await pageServer('<!doctype html><title>elsewhere</title>');
  convscope = await startTestServer({ CORS_ORIGINS: allowed.url });
  ({ browser, context } = await offlineBrowser(convscope.url, undefined, [allowed.url, other.url]));
});

afterAll(async () => {
  await browser?.close();
  await convscope?.close();
  await allowed?.close();
  await other?.close();
});

/** In a page of `pageUrl`: the filter grid's URL from /graphql, then its pixels through a canvas. */
async function useFrom(pageUrl: string, gridPath?: string) {
  const page = await context.newPage();
  try {
    await page.goto(pageUrl);
    return await page.evaluate(
      async ({ server, gridPath }) => {
        const out: { graphql?: string; url?: string; pixels?: string; drawn?: number } = {};
        try {
          const res = await fetch(`${server}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: '{ model(name: "alexnet") { layer(name: "/features/features.0/Conv") { filterGridUrl } } }' }),
          });
          const body = await res.json();
          out.url = body.data.model.layer.filterGridUrl;
          out.graphql = 'answered';
        } catch (e) {
          out.graphql = `refused: ${(e as Error).name}`;
        }
        const img = new Image();
        img.crossOrigin = 'anonymous';
        img.src = `${server}${out.url ?? gridPath}`;
        try {
          await img.decode();
        } catch {
          out.pixels = 'not loaded';
          return out;
        }
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        try {
          const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
          out.drawn = new Set(Array.from(data.filter((_, i) => i % 4 === 0))).size; // distinct red levels
          out.pixels = 'read';
        } catch (e) {
          out.pixels = `tainted: ${(e as Error).name}`;
        }
        return out;
      },
      { server: convscope.url, gridPath },
    );
  } finally {
    await page.close();
  }
}

test('a page of an allowed origin calls /graphql and reads an /img result back from a canvas', async () => {
  const got = await useFrom(allowed.url);
  assert.equal(got.graphql, 'answered', JSON.stringify(got));
  assert.match(got.url ?? '', /^\/img\/[0-9a-f]{64}\.png$/);
  assert.equal(got.pixels, 'read', JSON.stringify(got));
  assert.ok(got.drawn! > 10, `the 16 kernels show many levels, got ${got.drawn}`);
});

test('a page of another origin is refused /graphql and the image for a canvas', async () => {
  const gridPath = (await useFrom(allowed.url)).url;
  const got = await useFrom(other.url, gridPath);
  assert.equal(got.graphql, 'refused: TypeError');
  assert.equal(got.pixels, 'not loaded');
});
