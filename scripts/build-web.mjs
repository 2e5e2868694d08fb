#!/usr/bin/env node
/**
 * Bundles the browser pages with esbuild, each into dist/web/<page>/ with content-hashed file
 * names plus manifest.json naming them for src/http/bundled-page.ts. Nothing is loaded from a
 * CDN at run time.
 *   - graphiql (src/web/graphiql/main.tsx): GraphiQL at GET /graphql, with monaco's web workers;
 *   - gallery (src/web/gallery/main.tsx): the gallery at GET / (type-checked apart by
 *     `tsc -p src/web/gallery/tsconfig.json`);
 *   - embed (src/web/embed/embed.ts, src/web/client/client.ts): the web components at /embed.js
 *     and the typed client at /client.js (type-checked by `tsc -p src/web/embed/tsconfig.json`).
 *
 *   node scripts/build-web.mjs          (run by `npm run build`, after tsc)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Builds one page: `build(common, outputNamed)` runs its esbuild builds and returns its manifest. */
async function bundle(name, build) {
  const started = performance.now();
  const outdir = path.join(root, 'dist', 'web', name);
  fs.rmSync(outdir, { recursive: true, force: true });
  fs.mkdirSync(outdir, { recursive: true });
  const common = {
    absWorkingDir: root,
    bundle: true,
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    target: ['chrome111', 'firefox111', 'safari16.4'],
    outdir,
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    metafile: true,
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  };
  /** The one output of `result` named `<base>-<hash><ext>`, relative to outdir. */
  const outputNamed = (result, base, ext) => {
    const files = Object.keys(result.metafile.outputs).map((file) => path.relative(outdir, path.resolve(root, file)));
    const found = files.filter((f) => f.startsWith(`${base}-`) && f.endsWith(ext));
    if (found.length !== 1) throw new Error(`expected one ${base}-*${ext} from esbuild, got: ${files.join(', ')}`);
    return found[0];
  };
  const manifest = { ...(await build(common, outputNamed)), builtAt: new Date().toISOString() };
  fs.writeFileSync(path.join(outdir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  const files = fs.readdirSync(outdir);
  const bytes = files.reduce((sum, f) => sum + fs.statSync(path.join(outdir, f)).size, 0);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${name}: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB in dist/web/${name} (${seconds} s)`);
}

await bundle('graphiql', async (common, outputNamed) => {
  // 1. Monaco's web workers, as classic scripts (new Worker(url) without {type: 'module'}).
  const workerEntries = {
    editor: 'monaco-editor/esm/vs/editor/editor.worker.js',
    graphql: 'monaco-graphql/esm/graphql.worker.js',
    json: 'monaco-editor/esm/vs/language/json/json.worker.js',
  };
  const workers = await esbuild.build({
    ...common,
    format: 'iife',
    entryPoints: Object.fromEntries(Object.entries(workerEntries).map(([name, input]) => [`${name}.worker`, input])),
  });
  const workerFiles = Object.fromEntries(Object.keys(workerEntries).map((name) => [name, outputNamed(workers, `${name}.worker`, '.js')]));

  // 2. The page: React + GraphiQL, with its CSS (fonts are inlined by graphiql; any other font or
  //    image becomes a hashed file next to the bundle).
  const page = await esbuild.build({
    ...common,
    format: 'esm',
    jsx: 'automatic',
    entryPoints: { graphiql: 'src/web/graphiql/main.tsx' },
    loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file', '.svg': 'file', '.png': 'file' },
    // Only imported (dynamically) by @graphiql/toolkit when a subscriptionUrl is given: never here.
    external: ['graphql-ws'],
    define: { ...common.define, __GRAPHIQL_WORKERS__: JSON.stringify(workerFiles) },
  });
  return { js: outputNamed(page, 'graphiql', '.js'), css: outputNamed(page, 'graphiql', '.css'), workers: workerFiles };
});

await bundle('gallery', async (common, outputNamed) => {
  // React, the graphql-ws client and the page's CSS.
  const page = await esbuild.build({ ...common, format: 'esm', jsx: 'automatic', entryPoints: { gallery: 'src/web/gallery/main.tsx' } });
  return { js: outputNamed(page, 'gallery', '.js'), css: outputNamed(page, 'gallery', '.css') };
});

await bundle('embed', async (common) => {
  // The web components (/embed.js) and the typed client (/client.js): ES modules under fixed
  // names, since pages and dashboards name them (src/http/embed.ts).
  await esbuild.build({ ...common, format: 'esm', entryNames: '[name]', entryPoints: { embed: 'src/web/embed/embed.ts', client: 'src/web/client/client.ts' } });
  return { js: 'embed.js', client: 'client.js' };
});
