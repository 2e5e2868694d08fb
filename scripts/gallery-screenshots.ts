/**
 * The gallery screenshots in docs/ (gallery-layers.png, gallery-filter.png, gallery-image.png,
 * gallery-evolution.png), taken with headless Chromium; part of scripts/docs-pictures.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, Page } from 'playwright-core';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = 'fashion-zfnet';
const FILTER_VIEW = { layer: '/relu2/Relu', filter: 3 }; // a ZF Fig. 2 with boxes smaller than the image
const EVOLUTION_VIEW = { layer: '/relu5/Relu', filter: 3 };
const IMAGE = Buffer.from(JSON.stringify(['Image', 'dataset', 'fashion-mnist-demo', 'test-00000.png'])).toString('base64url');

/** Waits until every image on the page is decoded. */
async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => Array.from(document.images).every((img) => img.complete && img.naturalWidth > 0), undefined, { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelectorAll('.loading').length === 0, undefined, { timeout: 30_000 });
}

/** Takes the screenshots from a fresh server at `url` over the repository's own model and dataset. */
export async function galleryScreenshots(url: string): Promise<void> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    const shoot = async (name: string, target?: string) => {
      await settled(page);
      const file = path.join(ROOT, 'docs', name);
      if (target) await page.locator(target).screenshot({ path: file });
      else await page.screenshot({ path: file, fullPage: true });
      console.log(`docs/${name} (${(fs.statSync(file).size / 1024).toFixed(0)} KiB)`);
    };

    // Layers (waits for the start-up index: the table's page shows it as built).
    await page.goto(`${url}/?model=${MODEL}`);
    await page.locator('.index-panel', { hasText: ': built' }).waitFor({ timeout: 120_000 });
    await page.locator('.kernels img').waitFor();
    await shoot('gallery-layers.png');

    // A filter's top 9, one image opened with its receptive field.
    await page.goto(`${url}/?model=${MODEL}&layer=${FILTER_VIEW.layer}&filter=${FILTER_VIEW.filter}`);
    await page.locator('.top9-patches img').nth(8).waitFor();
    await page.locator('.top9-patches .cell').nth(1).click();
    await page.locator('.whole-image').waitFor();
    await page.mouse.move(0, 0);
    await shoot('gallery-filter.png');

    // Training evolution, with each snapshot's own index (built from the page).
    await page.goto(`${url}/?model=${MODEL}&layer=${EVOLUTION_VIEW.layer}&filter=${EVOLUTION_VIEW.filter}`);
    await page.locator('.top9-patches img').nth(8).waitFor();
    await page.getByRole('button', { name: 'Index the snapshots' }).click();
    await page.waitForFunction(
      () =>
        document.querySelectorAll('.snapshot .cell-caption').length === 4 &&
        Array.from(document.querySelectorAll('.snapshot .cell-caption')).every((c) => c.textContent?.includes('own top-1')),
      undefined,
      { timeout: 120_000 },
    );
    await page.waitForFunction(
      () =>
        document.querySelectorAll('.evolution .job').length === 0 ||
        Array.from(document.querySelectorAll<HTMLElement>('.evolution .job')).every((j) => j.dataset.state === 'DONE'),
    );
    await shoot('gallery-evolution.png', '.evolution');

    // An image: predictions, feature maps, a clicked unit's projection, occlusion.
    await page.goto(`${url}/?model=${MODEL}&view=image&image=${IMAGE}&layer=/relu2/Relu`);
    await page.locator('.maps canvas').first().waitFor();
    // The unit: the strongest of the map with the highest maximum (its title says "max …").
    const unit = await page.evaluate(() => {
      const maxOf = (el: Element) => Number(/max ([-+\d.e]+)/.exec(el.getAttribute('title') ?? '')?.[1] ?? -Infinity);
      const strongest = Array.from(document.querySelectorAll('.maps .map')).reduce((a, b) => (maxOf(b) > maxOf(a) ? b : a));
      const canvas = strongest.querySelector('canvas')!;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let best = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] > data[best]) best = i;
      const r = canvas.getBoundingClientRect();
      const x = (best / 4) % canvas.width;
      const y = Math.floor(best / 4 / canvas.width);
      return { x: r.left + ((x + 0.5) * r.width) / canvas.width, y: r.top + ((y + 0.5) * r.height) / canvas.height };
    });
    await page.mouse.click(unit.x, unit.y);
    await page.locator('.unit-projection img.projection-full').waitFor();
    await page.getByRole('button', { name: 'Compute occlusion maps' }).click();
    await page.locator('.occlusion-maps img').first().waitFor({ timeout: 60_000 });
    await page.mouse.move(0, 0);
    await shoot('gallery-image.png');
  } finally {
    await browser.close();
  }
}
