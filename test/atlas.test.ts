/**
 * The whole-model atlas end to end, on the default model and the demo dataset: through the
 * command line, `convscope atlas` builds the index, then writes a static site in which every Conv
 * and ReLU unit has its page, every picture decodes, and every link and image is a file of the
 * folder; through the API, `buildAtlas` is a job whose progress comes over jobProgress, and that
 * ends DONE with the URL of the same site, served by the server.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { loadConfig } from '../src/config';
import { projectionPng } from '../src/images/maps';
import { writeAtlas } from '../src/service/atlas';
import { projectsAsConv, projectUnit } from '../src/service/projection';
import { createScope } from '../src/service/scope';
import { createServices } from '../src/service/services';
import { topImage, topRows } from '../src/service/top-activations';
import { gql, GqlResult, jobUpdates, makeDataset, startTestServer } from './helpers';
import { ROOT } from './paths';

/** Every .html file under `dir`. */
const html = (dir: string): string[] =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? html(path.join(dir, e.name)) : e.name.endsWith('.html') ? [path.join(dir, e.name)] : []));
/** Every file under `dir`, relative to it, sorted. */
const tree = (dir: string): string[] =>
  (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();

function ok<T>(res: GqlResult<T>): T {
  assert.equal(res.errors, undefined, JSON.stringify(res.errors));
  return res.data as T;
}

describe('the whole-model atlas of fashion-zfnet over fashion-mnist-demo', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-atlas-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('convscope atlas: every unit of fashion-zfnet has a page, its pictures decode, and the folder works without the server', async () => {
    const out = path.join(tmp, 'atlas');
    {
      const run = spawnSync(
        process.execPath,
        [path.join(ROOT, 'dist', 'src', 'cli.js'), 'atlas', '--model', 'fashion-zfnet', '--dataset', 'fashion-mnist-demo', '--out', out],
        {
          env: {
            ...process.env,
            MODELS_DIR: path.join(ROOT, 'models'),
            DATASETS_DIR: path.join(ROOT, 'datasets'),
            CACHE_DIR: path.join(tmp, 'cache'),
            LOG_LEVEL: 'warn',
          },
          encoding: 'utf8',
        },
      );
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stderr, /\[#+\] 960\/960 units/, 'a progress bar over the units');
      const report = JSON.parse(run.stdout.trim().split('\n').pop()!);

      // Every Conv and ReLU layer, with a page per unit.
      const layers: { name: string; units: number }[] = report.layers;
      assert.deepEqual(
        layers.map((l) => l.name),
        [
          '/conv1/Conv',
          '/relu1/Relu',
          '/conv2/Conv',
          '/relu2/Relu',
          '/conv3/Conv',
          '/relu3/Relu',
          '/conv4/Conv',
          '/relu4/Relu',
          '/conv5/Conv',
          '/relu5/Relu',
          '/relu6/Relu',
        ],
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
    }
  }, 300_000);

  test("a ReLU reading a Conv shows the Conv's pictures where it is positive and grey where it is zero, byte for byte its own projections' pictures, without projecting them", async () => {
    // A few pictures unlike the model's clothes: on some of its top images, a unit is zero all over.
    await makeDataset(path.join(tmp, 'datasets', 'waves'), 9, 28, 28);
    const services = await createServices(
      loadConfig({
        MODELS_DIR: path.join(ROOT, 'models'),
        DATASETS_DIR: path.join(tmp, 'datasets'),
        CACHE_DIR: path.join(tmp, 'cache-relu'),
        LOG_LEVEL: 'warn',
      }),
    );
    try {
      const model = services.registry.models.get('fashion-zfnet')!;
      const dataset = services.datasets.datasets.get('waves')!;
      const layer = (name: string) => model.layerByName.get(name)!;
      const pairs = [
        [layer('/conv1/Conv'), layer('/relu1/Relu')],
        [layer('/conv5/Conv'), layer('/relu5/Relu')],
      ];
      for (const [conv, relu] of pairs) {
        assert.equal(projectsAsConv(model, relu), conv);
        assert.equal(projectsAsConv(model, conv), undefined);
      }
      assert.equal(projectsAsConv(model, layer('/relu6/Relu')), undefined, 'relu6 reads a Gemm');
      const layers = pairs.flat().map((l) => l.name);
      const job = await services.jobs.start(model, dataset, layers, 9);
      assert.equal((await services.jobs.wait(job.id))?.state, 'DONE');

      // The engine's items at the start of each layer and at the end.
      const out = path.join(tmp, 'relu-atlas');
      const items: number[] = [];
      const onProgress = (p: { layersDone: number }) => {
        if (items.length === p.layersDone) items.push(services.engine.stats.items);
      };
      await writeAtlas(services, model, dataset, out, { layers, onProgress });
      const folders = [...fs.readFileSync(path.join(out, 'index.html'), 'utf8').matchAll(/href="([^"/]+)\/index\.html"/g)].map((m) => m[1]);
      const projections = (l: number, unit: number) =>
        [...fs.readFileSync(path.join(out, folders[l], `${unit}.html`), 'utf8').matchAll(/src="\.\.\/img\/([0-9a-f]{64}\.png)"/g)].map((m) => m[1]).slice(0, 9);

      let zeros = 0;
      for (const [i, [conv, relu]] of pairs.entries()) {
        const [convItems, reluItems] = [items[2 * i + 1] - items[2 * i], items[2 * i + 2] - items[2 * i + 1]];
        const units = conv.units[0];
        assert.equal(convItems, 9 * units);
        let [shared, positive, zero] = [0, 0, 0];
        for (let index = 0; index < units; index++) {
          const unit = { model, layer: relu, index };
          const convPictures = new Set(projections(2 * i, index));
          const rows = (await topRows(services, unit, dataset)).slice(0, 9);
          for (const [rank, file] of projections(2 * i + 1, index).entries()) {
            // The ReLU unit's own projection, computed now, drawn as the atlas draws it.
            const p = await projectUnit(createScope(services), unit, topImage(services, dataset, rows[rank]), {});
            const own = await projectionPng(p.result, model.preprocessing, p.inputBox, 1);
            assert.equal(file, `${createHash('sha256').update(own).digest('hex')}.png`, `${relu.name} unit ${index} rank ${rank + 1}`);
            if (convPictures.has(file)) shared++;
            if (rows[rank].value > 0) positive++;
            if (rows[rank].value === 0) zero++;
          }
        }
        const what = `${relu.name}: ${positive} positive and ${zero} zero of ${9 * units} top activations, ${shared} of its pictures the Conv's`;
        assert.ok(positive > 0 && shared >= positive, what);
        assert.ok(reluItems <= 9 * units - positive - zero, `${what}; ${reluItems} projected`);
        zeros += zero;
      }
      assert.ok(zeros > 0, 'some ReLU units are zero all over some of their top images');
    } finally {
      await services.engine.close();
    }
  }, 300_000);

  const JOB = 'id kind state imagesDone imagesTotal unitsDone unitsTotal url error';
  const BUILD = `mutation { buildAtlas(model: "fashion-zfnet", dataset: "fashion-mnist-demo") { ${JOB} } }`;

  test('buildAtlas: a job with progress over jobProgress, DONE with the URL of the same site, served; found again, also after a restart', async () => {
    // The CLI's cache (its index and results) and a folder of atlases of its own.
    const env = {
      MODELS_DIR: path.join(ROOT, 'models'),
      DATASETS_DIR: path.join(ROOT, 'datasets'),
      CACHE_DIR: path.join(tmp, 'cache'),
      ATLAS_DIR: path.join(tmp, 'atlases'),
    };
    const server = await startTestServer(env);
    let url: string;
    try {
      const job = ok<any>(await gql(server.url, BUILD)).buildAtlas;
      assert.equal(job.kind, 'ATLAS');
      assert.ok(['RUNNING', 'DONE'].includes(job.state), job.state);
      const events = await jobUpdates<any>(server.url, job.id, JOB, undefined, 240_000);
      const last = events.at(-1);
      assert.equal(last.state, 'DONE', JSON.stringify(last));
      assert.deepEqual([last.unitsDone, last.unitsTotal], [960, 960]);
      const running = events.filter((e) => e.state === 'RUNNING' && e.unitsTotal === 960);
      assert.ok(running.length >= 2, `progress events arrive while the pages are written: ${JSON.stringify(events.map((e) => e.unitsDone))}`);
      const done = running.map((e) => e.unitsDone);
      assert.deepEqual(
        done,
        [...done].sort((a, b) => a - b),
        'units done only grow',
      );
      assert.ok(done[0] < 960);
      assert.match(last.url, /^\/atlas\/atlas-[0-9a-f]{32}\/index\.html$/);
      url = last.url;

      // Served: every layer's and unit's page, and every picture decodes.
      const get = async (u: string) => {
        const res = await fetch(server.url + u);
        assert.equal(res.status, 200, u);
        return res;
      };
      const top = await get(url);
      assert.match(top.headers.get('cache-control') ?? '', /immutable/);
      const base = url.slice(0, url.lastIndexOf('/') + 1);
      const folders = [...(await top.text()).matchAll(/href="([^"/]+)\/index\.html"/g)].map((m) => m[1]);
      assert.equal(folders.length, 11);
      const pictures = new Set<string>();
      let pages = 0;
      for (const folder of folders) {
        const units = [...(await (await get(`${base}${folder}/index.html`)).text()).matchAll(/href="(\d+)\.html"/g)].map((m) => m[1]);
        assert.ok(units.length > 0, folder);
        for (const unit of units) {
          const page = await (await get(`${base}${folder}/${unit}.html`)).text();
          const srcs = [...page.matchAll(/src="\.\.\/(img\/[0-9a-f]{64}\.png)"/g)].map((m) => m[1]);
          assert.equal(srcs.length, 18, `${folder}/${unit}.html`);
          for (const src of srcs) pictures.add(src);
          pages++;
        }
      }
      assert.equal(pages, 960, 'every unit has its page');
      for (const src of pictures) {
        const { info } = await sharp(Buffer.from(await (await get(base + src)).arrayBuffer()))
          .raw()
          .toBuffer({ resolveWithObject: true });
        assert.ok(info.width > 0 && info.height > 0, src);
      }
      // The same site as the command line wrote, file for file.
      const dir = path.join(env.ATLAS_DIR, url.split('/')[2]);
      assert.deepEqual(tree(dir), tree(path.join(tmp, 'atlas')));
      for (const f of tree(dir)) assert.ok(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(tmp, 'atlas', f))), f);
      assert.deepEqual(fs.readdirSync(path.join(env.ATLAS_DIR, '.tmp')), [], 'nothing left aside');
      assert.equal((await fetch(`${server.url}/atlas/.tmp/`)).status, 404, 'work in progress is not served');

      // Asked again: the same job, DONE at once; listed with the jobs; a node.
      const again = ok<any>(await gql(server.url, BUILD)).buildAtlas;
      assert.deepEqual([again.id, again.state, again.url], [job.id, 'DONE', url]);
      const listed = ok<any>(await gql(server.url, '{ jobs { id kind state } }')).jobs;
      assert.ok(listed.some((j: any) => j.id === job.id && j.kind === 'ATLAS' && j.state === 'DONE'));
      assert.ok(listed.some((j: any) => j.kind === 'INDEX' && j.state === 'DONE'));
      assert.equal(ok<any>(await gql(server.url, `query($id: ID!) { node(id: $id) { ... on Job { url } } }`, { id: job.id })).node.url, url);
    } finally {
      await server.close();
    }
    // A restarted server finds the atlas by its folder, computing nothing.
    const restarted = await startTestServer(env);
    try {
      const found = ok<any>(await gql(restarted.url, BUILD)).buildAtlas;
      assert.deepEqual([found.state, found.url, found.unitsDone], ['DONE', url, 960]);
      assert.equal(restarted.services.engine.stats.runs, 0);
      assert.equal((await fetch(restarted.url + url)).status, 200);
    } finally {
      await restarted.close();
    }
  }, 300_000);

  test('buildAtlas refuses what buildIndex refuses, with its codes', async () => {
    const server = await startTestServer({
      MODELS_DIR: path.join(ROOT, 'models'),
      DATASETS_DIR: path.join(ROOT, 'datasets'),
      ATLAS_DIR: path.join(tmp, 'none'),
    });
    try {
      const code = async (args: string) => (await gql(server.url, `mutation { buildAtlas(${args}) { id } }`)).errors?.[0]?.extensions?.code;
      assert.equal(await code('model: "nope", dataset: "fashion-mnist-demo"'), 'NOT_FOUND');
      assert.equal(await code('model: "fashion-zfnet", dataset: "nope"'), 'NOT_FOUND');
      assert.equal(await code('model: "fashion-zfnet", dataset: "fashion-mnist-demo", layers: ["/nope"]'), 'NOT_FOUND');
      assert.equal(await code('model: "fashion-zfnet", dataset: "fashion-mnist-demo", k: 0'), 'BAD_USER_INPUT');
      assert.equal(fs.existsSync(path.join(tmp, 'none')), false, 'nothing written');
    } finally {
      await server.close();
    }
  });
});
