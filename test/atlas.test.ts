/**
 * The whole-model atlas end to end, through the command line: `convscope atlas` on the default
 * model and the demo dataset builds the index, then writes a static site in which every Conv and
 * ReLU unit has its page, every picture decodes, and every link and image is a file of the folder.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { ROOT } from './paths';

test('convscope atlas: every unit of fashion-zfnet has a page, its pictures decode, and the folder works without the server', { timeout: 300_000 }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-atlas-'));
  const out = path.join(tmp, 'atlas');
  try {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli.js'), 'atlas', '--model', 'fashion-zfnet', '--dataset', 'fashion-mnist-demo', '--out', out], {
      env: { ...process.env, MODELS_DIR: path.join(ROOT, 'models'), DATASETS_DIR: path.join(ROOT, 'datasets'), CACHE_DIR: path.join(tmp, 'cache'), LOG_LEVEL: 'warn' },
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /\[#+\] 960\/960 units/, 'a progress bar over the units');
    const report = JSON.parse(run.stdout.trim().split('\n').pop()!);

    // Every Conv and ReLU layer, with a page per unit.
    const layers: { name: string; units: number }[] = report.layers;
    assert.deepEqual(
      layers.map((l) => l.name),
      ['/conv1/Conv', '/relu1/Relu', '/conv2/Conv', '/relu2/Relu', '/conv3/Conv', '/relu3/Relu', '/conv4/Conv', '/relu4/Relu', '/conv5/Conv', '/relu5/Relu', '/relu6/Relu'],
    );
    const index = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
    const folders = [...index.matchAll(/href="([^"/]+)\/index\.html"/g)].map((m) => m[1]);
    assert.equal(folders.length, layers.length);
    let pages = 0;
    for (const [i, layer] of layers.entries()) {
      assert.ok(layer.units > 0);
      for (let unit = 0; unit < layer.units; unit++) {
        const page = fs.readFileSync(path.join(out, folders[i], `${unit}.html`), 'utf8');
        assert.ok(page.includes(`unit ${unit}`) && page.includes(layer.name), `${folders[i]}/${unit}.html`);
        assert.equal([...page.matchAll(/<img /g)].length, 18, `${folders[i]}/${unit}.html: 9 projections and 9 patches`);
        pages++;
      }
    }
    assert.equal(pages, 960);

    // Every link and picture of every page is a file of the folder (relative: it opens from disk).
    const html = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? html(path.join(dir, e.name)) : e.name.endsWith('.html') ? [path.join(dir, e.name)] : []));
    const pictures = new Set<string>();
    for (const file of html(out)) {
      for (const [, kind, target] of fs.readFileSync(file, 'utf8').matchAll(/(href|src)="([^"]+)"/g)) {
        assert.ok(!/^[a-z]+:|^\//.test(target), `${file}: ${target} is relative`);
        const resolved = path.resolve(path.dirname(file), target);
        assert.ok(resolved.startsWith(out) && fs.existsSync(resolved), `${file}: ${target} exists`);
        if (kind === 'src') pictures.add(resolved);
      }
    }
    // Every picture decodes, and is named by its bytes' hash.
    assert.ok(pictures.size > 1000, `${pictures.size} pictures`);
    for (const file of pictures) {
      const { info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
      assert.ok(info.width > 0 && info.height > 0, file);
      assert.equal(`${createHash('sha256').update(fs.readFileSync(file)).digest('hex')}.png`, path.basename(file));
    }
    assert.deepEqual(fs.readdirSync(path.join(out, 'img')).sort(), [...pictures].map((f) => path.basename(f)).sort(), 'no picture unused');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
