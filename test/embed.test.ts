/**
 * The embeddable views and the typed client, used as a dashboard would: a page served from another
 * loopback port (allowed by CORS_ORIGINS) loads /embed.js from convscope and shows a layer's
 * filters, a projection, a top-9 and an occlusion map with the web components, and calls the
 * API with /client.js; in a real (Debian) Chromium. The client also runs in Node.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Browser, BrowserContext } from 'playwright-core';
import { ConvscopeClient } from '../src/web/client/client';
import { offlineBrowser, pageServer } from './browser';
import { makeDataset, startTestServer } from './helpers';

const MODEL = 'alexnet';
const LAYER = '/features/features.0/Conv';
const INDEXED = '/features/features.1/Relu';

let convscope: Awaited<ReturnType<typeof startTestServer>>;
let dashboard: Awaited<ReturnType<typeof pageServer>>;
let datasetsDir: string;
let imageId: string;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  dashboard = await pageServer('');
  datasetsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-embed-'));
  const names = await makeDataset(path.join(datasetsDir, 'tiny'), 10, 64, 64);
  convscope = await startTestServer({ DATASETS_DIR: datasetsDir, CORS_ORIGINS: dashboard.url });
  // The typed client, in Node: an image to look at and the index the top-9 needs.
  const api = new ConvscopeClient({ server: convscope.url });
  imageId = await api.uploadImage(fs.readFileSync(path.join(datasetsDir, 'tiny', names[3])).toString('base64'));
  let job = await api.buildIndex(MODEL, 'tiny', [INDEXED]);
  while (job.state === 'QUEUED' || job.state === 'RUNNING') {
    await new Promise((r) => setTimeout(r, 200));
    job = await api.job(job.id);
  }
  assert.equal(job.state, 'DONE');
  const s = convscope.url;
  // The page names convscope's port, known only now (CORS_ORIGINS needed the page's first).
  dashboard.html = `<!doctype html><title>dashboard</title>
    <script type="module" src="${s}/embed.js"></script>
    <convscope-filters id="filters" server="${s}" model="${MODEL}" layer="${LAYER}"></convscope-filters>
    <convscope-projection id="projection" server="${s}" model="${MODEL}" layer="${INDEXED}" filter="2" image="${imageId}"></convscope-projection>
    <convscope-top9 id="top9" server="${s}" model="${MODEL}" layer="${INDEXED}" filter="2" dataset="tiny"></convscope-top9>
    <convscope-occlusion id="occlusion" server="${s}" model="${MODEL}" image="${imageId}" size="56" stride="56"></convscope-occlusion>
    <convscope-top9 id="unindexed" server="${s}" model="${MODEL}" layer="${LAYER}" filter="0" dataset="tiny"></convscope-top9>`;
  ({ browser, context } = await offlineBrowser(convscope.url, undefined, [dashboard.url]));
});

afterAll(async () => {
  await browser?.close();
  await convscope?.close();
  await dashboard?.close();
  if (datasetsDir) fs.rmSync(datasetsDir, { recursive: true, force: true });
});

test('a page on another origin shows filters, a projection, a top-9 and an occlusion map with the web components', async () => {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    await page.goto(dashboard.url);
    await page.waitForFunction(
      () => Array.from(document.querySelectorAll<HTMLElement>('body > *[id]')).every((e) => e.dataset.state === 'ready' || e.dataset.state === 'error'),
      undefined,
      { timeout: 60_000 },
    );
    // Every picture of every view loaded, decoded, drawn into a canvas (crossorigin) and not flat.
    const views = await page.evaluate(async () => {
      const out: Record<string, { state?: string; code?: string; text: string; images: { width: number; levels: number }[] }> = {};
      for (const el of Array.from(document.querySelectorAll<HTMLElement>('body > *[id]'))) {
        const images = [];
        for (const img of Array.from(el.shadowRoot!.querySelectorAll('img'))) {
          await img.decode();
          const canvas = Object.assign(document.createElement('canvas'), { width: img.naturalWidth, height: img.naturalHeight });
          const ctx = canvas.getContext('2d')!;
          ctx.drawImage(img, 0, 0);
          const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
          images.push({ width: img.naturalWidth, levels: new Set(Array.from(data.filter((_, i) => i % 4 !== 3))).size });
        }
        out[el.id] = { state: el.dataset.state, code: el.dataset.code, text: el.shadowRoot!.textContent ?? '', images };
      }
      return out;
    });
    const ready = (id: string, count: number) => {
      const v = views[id];
      assert.equal(v.state, 'ready', `${id}: ${JSON.stringify(v)}`);
      assert.equal(v.images.length, count, id);
      for (const img of v.images) assert.ok(img.width > 0 && img.levels > 2, `${id}: ${JSON.stringify(img)}`);
    };
    ready('filters', 1);
    ready('projection', 1);
    ready('top9', 18); // 9 patches, 9 projections
    ready('occlusion', 3);
    assert.equal(views.unindexed.state, 'error');
    assert.equal(views.unindexed.code, 'INDEX_NOT_BUILT');
    assert.match(views.unindexed.text, /buildIndex/);

    // A changed attribute renders the view again.
    const before = await page.evaluate(() => document.querySelector('#projection')!.shadowRoot!.querySelector('img')!.src);
    await page.evaluate(() => document.querySelector('#projection')!.setAttribute('filter', '5'));
    await page.waitForFunction((old) => {
      const el = document.querySelector<HTMLElement>('#projection')!;
      return el.dataset.state === 'ready' && el.shadowRoot!.querySelector('img')?.src !== old;
    }, before);

    // The typed client as a plain ES module from the server.
    const models = await page.evaluate(async (server) => {
      const { ConvscopeClient } = await import(`${server}/client.js`);
      return (await new ConvscopeClient({ server }).models()).map((m: { name: string }) => m.name);
    }, convscope.url);
    assert.ok(models.includes(MODEL), JSON.stringify(models));
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
}, 90_000);
