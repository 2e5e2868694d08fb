/**
 * The gallery page at / : HTTP routing, and a real (Debian) Chromium that explores the default
 * model on a fresh server with every request off this machine blocked: model → layer → filter
 * (9 patches and 9 projections, decoded and not blank), a deep link, an image's feature maps and
 * the projection of a clicked unit, a filter's feature visualization, building an index from the
 * page, and errors shown in it.
 */
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Browser, BrowserContext, Page } from 'playwright-core';
import { galleryRoutes, GALLERY_DIR } from '../src/http/gallery';
import { assertBundledPage, fetchFrom, offlineBrowser } from './browser';
import { gql, ROOT, startTestServer } from './helpers';
const MODEL = 'fashion-zfnet';
const DATASET = 'fashion-mnist-demo';

let server: Awaited<ReturnType<typeof startTestServer>>;

beforeAll(async () => {
  // The repository's own model (its sidecar starts the top-9 index in the background) and dataset.
  server = await startTestServer({ MODELS_DIR: path.join(ROOT, 'models'), DATASETS_DIR: path.join(ROOT, 'datasets') });
});

afterAll(async () => {
  await server?.close();
});

test('GET / is the gallery page, with hashed, long-cached assets', async () => {
  assert.ok(fs.existsSync(path.join(GALLERY_DIR, 'manifest.json')), `no gallery bundle in ${GALLERY_DIR}: run npm run build`);
  await assertBundledPage(server.url, `/?model=${MODEL}&layer=/relu5/Relu&filter=3`, '/gallery');
});

test('without a built bundle, / says how to build it', async () => {
  const { status, text } = await fetchFrom(galleryRoutes(fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-no-gallery-'))), '/');
  assert.equal(status, 503);
  assert.match(text, /scripts\/build-web\.mjs/);
});

/** In the page: every image matched is loaded, decoded and not one flat colour. */
async function expectRendered(page: Page, selector: string, count: number): Promise<void> {
  await page
    .locator(selector)
    .nth(count - 1)
    .waitFor({ timeout: 30_000 });
  assert.equal(await page.locator(selector).count(), count, `${count} × ${selector}`);
  await page.waitForFunction(
    (sel) => Array.from(document.querySelectorAll<HTMLImageElement>(sel)).every((img) => img.complete && img.naturalWidth > 0),
    selector,
    { timeout: 15_000 },
  );
  const report = await page.evaluate(async (sel) => {
    const out: { src: string; width: number; variance: number }[] = [];
    for (const img of Array.from(document.querySelectorAll<HTMLImageElement>(sel))) {
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let sum = 0;
      let sq = 0;
      const n = data.length / 4;
      for (let i = 0; i < data.length; i += 4) {
        const v = data[i] + data[i + 1] + data[i + 2];
        sum += v;
        sq += v * v;
      }
      out.push({ src: img.src, width: img.naturalWidth, variance: sq / n - (sum / n) ** 2 });
    }
    return out;
  }, selector);
  for (const r of report) {
    assert.ok(r.width > 0, `${r.src} decoded`);
    assert.ok(r.variance > 0, `${r.src} is not blank (variance ${r.variance})`);
  }
}

describe('the gallery in Chromium', () => {
  let browser: Browser | undefined;
  let context: BrowserContext;
  let blocked: string[] = [];
  const pageErrors: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    ({ browser, context, blocked } = await offlineBrowser(server.url, { width: 1400, height: 1000 }));
    // Index jobs shown by the page, however briefly (a MutationObserver sees every one).
    await context.addInitScript(() => {
      const seen: string[] = ((window as unknown as { __jobStates: string[] }).__jobStates = []);
      new MutationObserver(() => document.querySelectorAll<HTMLElement>('.job').forEach((el) => seen.push(el.dataset.state ?? '?'))).observe(document, {
        subtree: true,
        childList: true,
        attributes: true,
      });
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  }, 120_000);

  /** A page whose errors are collected; on failure the assertion says what the page looked like. */
  async function withPage(name: string, run: (page: Page) => Promise<void>): Promise<void> {
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
    page.on('console', (msg) => msg.type() === 'error' && consoleErrors.push(`${name}: ${msg.text()}`));
    try {
      await run(page);
      assert.deepEqual(blocked, [], 'the page tried to load nothing from another host');
      assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
      assert.deepEqual(consoleErrors, [], 'no console errors');
    } catch (err) {
      const shot = path.join(os.tmpdir(), `convscope-gallery-${name}.png`);
      const saved = await page.screenshot({ path: shot, fullPage: true }).then(
        () => true,
        () => false,
      );
      const notes = [
        blocked.length ? `blocked: ${blocked.join(', ')}` : '',
        pageErrors.length ? `page errors: ${pageErrors.join(' | ')}` : '',
        consoleErrors.length ? `console: ${consoleErrors.join(' | ')}` : '',
        saved ? `screenshot: ${shot}` : '',
      ].filter(Boolean);
      if (notes.length && err instanceof Error) err.message += `\n${notes.join('\n')}`;
      throw err;
    } finally {
      await page.close();
    }
  }

  test('model → layer → filter shows the top 9: patches beside projections, and the whole image with its box', async () => {
    await withPage('filter', async (page) => {
      await page.goto(`${server.url}/`);
      await page.getByRole('link', { name: new RegExp(`^${MODEL}\\b`) }).click();
      await page.locator('table.layers').waitFor();
      assert.match(page.url(), new RegExp(`[?&]model=${MODEL}(&|$)`));
      await page.locator('table.layers').getByRole('link', { name: '/relu5/Relu', exact: true }).click();
      await page.locator('.filter-grid .filter-tile').nth(63).waitFor();
      await page.locator('.filter-grid .filter-tile', { has: page.locator('.filter-index', { hasText: /^3$/ }) }).click();
      await page.locator('.filter-name', { hasText: 'filter 3' }).waitFor();
      const url = new URL(page.url());
      assert.equal(url.searchParams.get('model'), MODEL);
      assert.equal(url.searchParams.get('layer'), '/relu5/Relu');
      assert.equal(url.searchParams.get('filter'), '3');
      // On a fresh server the index may still be building: the page shows that, then the top 9.
      await expectRendered(page, '.top9-patches img', 9);
      await expectRendered(page, '.top9-projections img', 9);
      const captions = await page.locator('.top9-patches .cell-caption').allInnerTexts();
      assert.ok(
        captions.every((c) => /\d\.\d{3}/.test(c) && /test-\d{5}\.png/.test(c)),
        `value and image name under each patch: ${captions.join(' | ')}`,
      );

      await page.locator('.top9-patches .cell').first().click();
      await page.locator('.whole-image').waitFor();
      await expectRendered(page, '.whole-image .whole-image-picture img', 1);
      const rect = page.locator('.whole-image .whole-image-picture svg rect');
      assert.ok(Number(await rect.getAttribute('width')) > 0, 'the receptive field is boxed');

      // The training snapshots' strip (ZF Fig. 4): one projection per snapshot.
      await expectRendered(page, '.evolution .snapshot img', 4);
    });
  }, 120_000);

  test('a deep link to a filter restores its view', async () => {
    await withPage('deep-link', async (page) => {
      await page.goto(`${server.url}/?model=${MODEL}&layer=/conv1/Conv&filter=5`);
      await page.locator('.filter-name', { hasText: 'filter 5' }).waitFor();
      assert.equal(await page.locator('select[aria-label=layer]').inputValue(), '/conv1/Conv');
      await expectRendered(page, '.top9-patches img', 9);
      await expectRendered(page, '.top9-projections img', 9);
      await expectRendered(page, '.weights img', 1); // conv1's kernel as an image
      // Back to the layer: its kernels, as images (ZF Fig. 6).
      await page.getByRole('link', { name: 'filters', exact: true }).click();
      await expectRendered(page, '.filter-grid.kernels img', 32);
      await page.goBack();
      await page.locator('.filter-name', { hasText: 'filter 5' }).waitFor();
    });
  }, 120_000);

  test("a filter's feature visualization, beside its top 9, on a click", async () => {
    await withPage('feature-visualization', async (page) => {
      await page.goto(`${server.url}/?model=${MODEL}&layer=/relu5/Relu&filter=3`);
      await expectRendered(page, '.top9-patches img', 9);
      // Run as a job (startFeatureVisualization), its steps shown as they come over jobProgress.
      const sent: string[] = [];
      page.on('websocket', (ws) => ws.on('framesent', (f) => typeof f.payload === 'string' && sent.push(f.payload)));
      page.on('request', (r) => r.method() === 'POST' && sent.push(r.postData() ?? ''));
      await page.evaluate(() => {
        const seen: number[] = ((window as unknown as { __featvisSteps: number[] }).__featvisSteps = []);
        new MutationObserver(() => document.querySelectorAll<HTMLProgressElement>('.featvis-progress').forEach((el) => seen.push(el.value))).observe(document, {
          subtree: true,
          childList: true,
          attributes: true,
        });
      });
      await page
        .locator('.top9 .feature-visualization')
        .getByRole('button', { name: /^Compute/ })
        .click();
      // 512 steps of a forward and a backward pass: seconds, more on a loaded machine.
      await page.locator('.feature-visualization img').waitFor({ timeout: 90_000 });
      assert.ok(
        sent.some((p) => p.includes('startFeatureVisualization')),
        'the page started a job',
      );
      assert.ok(
        sent.some((p) => p.includes('jobProgress')),
        'and followed it over jobProgress',
      );
      const steps = await page.evaluate(() => (window as unknown as { __featvisSteps: number[] }).__featvisSteps);
      assert.ok(steps.length > 0, 'its progress was shown');
      assert.deepEqual(
        steps,
        [...steps].sort((a, b) => a - b),
        `steps shown only grow: ${steps.join(' ')}`,
      );
      await expectRendered(page, '.feature-visualization img', 1);
      assert.match(await page.locator('.feature-visualization .cell-caption').innerText(), /channel mean \d+\.\d{3} after 512 steps/);
      const src = await page.locator('.feature-visualization img').getAttribute('src');
      assert.match(src ?? '', /\/img\/[0-9a-f]{64}\.png$/);
    });
  });

  test('an image: predictions, feature maps, and the projection of a clicked unit', async () => {
    await withPage('image', async (page) => {
      await page.goto(`${server.url}/?model=${MODEL}`);
      await page.getByRole('link', { name: 'Image', exact: true }).click();
      await page.locator('.thumbs .thumb').nth(3).click();
      await page.locator('.predictions li').nth(4).waitFor();
      const predictions = await page.locator('.predictions li').allInnerTexts();
      assert.equal(predictions.length, 5);
      assert.ok(
        predictions.every((p) => /\d %$/.test(p.trim())),
        predictions.join(' | '),
      );
      assert.ok(new URL(page.url()).searchParams.get('image'), 'the image is in the URL');

      // Click the strongest unit of the first channel that has one (its pixel is white).
      await page.locator('.maps canvas').first().waitFor();
      const target = await page.evaluate(() => {
        for (const canvas of Array.from(document.querySelectorAll<HTMLCanvasElement>('.maps canvas'))) {
          const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
          for (let i = 0; i < data.length; i += 4) {
            if (data[i] !== 255) continue;
            const x = (i / 4) % canvas.width;
            const y = Math.floor(i / 4 / canvas.width);
            const r = canvas.getBoundingClientRect();
            return {
              x: r.left + ((x + 0.5) * r.width) / canvas.width,
              y: r.top + ((y + 0.5) * r.height) / canvas.height,
              unit: [Number(canvas.parentElement!.dataset.channel), x, y].join(','),
            };
          }
        }
        return null;
      });
      assert.ok(target, 'some channel has a positive maximum');
      await page.mouse.click(target.x, target.y);
      await page.locator('.unit-projection img.projection-full').waitFor();
      assert.equal(new URL(page.url()).searchParams.get('unit'), target.unit);
      await expectRendered(page, '.unit-projection img.projection-full', 1);
      await expectRendered(page, '.unit-projection img.projection-crop', 1);
      await page.locator('.the-image svg rect').waitFor(); // the unit's receptive field on the image

      // Upload: a file from the demo set becomes an uploaded image, analysed the same way.
      await page.locator('input[type=file]').setInputFiles(path.join(ROOT, 'datasets', DATASET, 'test-00001.png'));
      const uploaded = Buffer.from(JSON.stringify(['Image', 'upload']))
        .toString('base64url')
        .slice(0, -2); // the ID's prefix
      await page.waitForURL((u) => u.searchParams.get('image')?.startsWith(uploaded) ?? false, { timeout: 15_000 });
      await page.locator('.predictions li').nth(4).waitFor();
      await expectRendered(page, '.the-image img', 1); // shown from the page's own copy: uploads have no URL
    });
  }, 120_000);

  test('a layer outside the index: INDEX_NOT_BUILT in the page, then Build index with live progress', async () => {
    await withPage('build-index', async (page) => {
      const subscribed: string[] = [];
      page.on('websocket', (ws) => ws.on('framesent', (f) => typeof f.payload === 'string' && f.payload.includes('jobProgress') && subscribed.push(f.payload)));
      await page.goto(`${server.url}/?model=${MODEL}&layer=/pool5/MaxPool&filter=2`);
      const error = page.locator('.error', { hasText: 'INDEX_NOT_BUILT' });
      await error.waitFor({ timeout: 30_000 });
      assert.match(await error.innerText(), /no finished index/);
      await page.getByRole('button', { name: 'Build index' }).click();
      await expectRendered(page, '.top9-patches img', 9);
      await expectRendered(page, '.top9-projections img', 9);
      const states = await page.evaluate(() => (window as unknown as { __jobStates: string[] }).__jobStates);
      assert.ok(states.length > 0, 'the job was shown');
      assert.ok(subscribed.length > 0, 'the page subscribed to jobProgress');
    });
  }, 120_000);

  test("a filter's class selectivity; an image's top units (a click opens one) and its invariance curves", async () => {
    await withPage('unit-analysis', async (page) => {
      await page.goto(`${server.url}/?model=${MODEL}&layer=/relu5/Relu&filter=3`);
      await page.locator('.selectivity').waitFor({ timeout: 60_000 });
      const api = await gql(
        server.url,
        `{ model(name: "${MODEL}") { layer(name: "/relu5/Relu") { filter(index: 3) { selectivity(dataset: "${DATASET}") { label count share entropy } } } } }`,
      );
      const s = api.data.model.layer.filter.selectivity;
      const text = await page.locator('.selectivity').innerText();
      assert.ok(text.includes(`${s.label} in ${s.count} of its top 9`) && text.includes(`entropy ${s.entropy.toFixed(2)} bits`), text);

      const image = Buffer.from(JSON.stringify(['Image', 'dataset', DATASET, 'test-00000.png'])).toString('base64url');
      await page.goto(`${server.url}/?model=${MODEL}&view=image&image=${image}&layer=/relu2/Relu`);
      await expectRendered(page, '.top-units .top-unit img', 8);
      const top = (
        await gql(
          server.url,
          `{ model(name: "${MODEL}") { topUnits(image: { id: "${image}" }, layer: "/relu2/Relu", first: 1) { filter { index } position { x y } } } }`,
        )
      ).data.model.topUnits[0];
      await page.locator('.top-units .top-unit').first().click();
      await page.waitForURL((u) => u.searchParams.get('unit') === `${top.filter.index},${top.position.x},${top.position.y}`);
      await expectRendered(page, '.unit-projection img.projection-full', 1);

      await expectRendered(page, '.invariance img.invariance-plot', 1);
      const rotation = await page.locator('.invariance img.invariance-plot').getAttribute('src');
      await page.locator('select[aria-label=transform]').selectOption('TRANSLATE');
      await page.waitForFunction(
        (before) => document.querySelector<HTMLImageElement>('.invariance img.invariance-plot')?.getAttribute('src') !== before,
        rotation,
      );
      await expectRendered(page, '.invariance img.invariance-plot', 1);
      assert.match(await page.locator('.invariance').innerText(), /p\(Ankle boot\) \(the image’s label\)/);
    });
  }, 120_000);

  test('compare: a training snapshot beside the model, matched units side by side, paged', async () => {
    await withPage('compare', async (page) => {
      const other = `${MODEL}@epoch-01`;
      await page.goto(`${server.url}/?model=${MODEL}`);
      await page.getByRole('link', { name: 'Compare', exact: true }).click();
      await page.locator('.compare-row').nth(15).waitFor({ timeout: 60_000 });
      assert.equal(await page.locator('select[aria-label="other model"]').inputValue(), other, 'the first snapshot by default');
      assert.equal(await page.locator('.compare select[aria-label=layer]').inputValue(), '/relu5/Relu', 'the deepest spatial ReLU by default');
      assert.equal(await page.locator('.compare-row').count(), 16);
      const api = (
        await gql(
          server.url,
          `{ model(name: "${MODEL}") { compare(other: "${other}", layer: "/relu5/Relu", dataset: "${DATASET}") { units(first: 16) { nodes { match { index } correlation } } } } }`,
        )
      ).data.model.compare.units.nodes;
      const shown = await page.locator('.compare-row .compare-r').allInnerTexts();
      assert.deepEqual(
        shown,
        api.filter((u: any) => u.correlation !== null).map((u: any) => u.correlation.toFixed(3)),
      );
      const projections = await page.locator('.compare-row .compare-projection').count();
      assert.equal(projections, 16 + api.filter((u: any) => u.match).length, 'a projection for each unit and each match');
      await expectRendered(page, '.compare-row .compare-projection', projections);
      await page.getByRole('button', { name: 'Next →' }).click();
      await page.locator('.compare-row[data-unit="16"]').waitFor();
      assert.equal(await page.locator('.compare-row').first().getAttribute('data-unit'), '16');
    });
  }, 120_000);

  test('errors are shown in the page: an unknown model, an out-of-range filter', async () => {
    await withPage('errors', async (page) => {
      await page.goto(`${server.url}/?model=no-such-model&layer=/conv1/Conv&filter=0`);
      const error = page.locator('.error', { hasText: 'NOT_FOUND' });
      await error.waitFor();
      assert.match(await error.innerText(), /no model "no-such-model"/);
      await page.goto(`${server.url}/?model=${MODEL}&layer=/conv1/Conv&filter=999`);
      await page.locator('.error').first().waitFor();
      assert.match(await page.locator('.error').first().innerText(), /[A-Z_]{5,}/, 'the error has its code');
    });
  }, 120_000);
});
