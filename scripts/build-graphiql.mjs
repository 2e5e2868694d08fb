#!/usr/bin/env node
/**
 * Bundles the offline GraphiQL page (src/web/graphiql/main.tsx) and the monaco web workers it
 * needs into dist/web/graphiql/, with content-hashed file names, plus manifest.json naming them
 * for src/http/graphiql.ts. Nothing is loaded from a CDN at run time.
 *
 *   node scripts/build-graphiql.mjs          (run by `npm run build`, after tsc)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'web', 'graphiql');
const started = performance.now();

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

/** The output files of a build, relative to outdir. */
const outputsOf = (result) => Object.keys(result.metafile.outputs).map((file) => path.relative(outdir, path.resolve(root, file)));

/** The one output named `<name>-<hash><ext>`. */
function outputNamed(files, name, ext) {
  const found = files.filter((f) => f.startsWith(`${name}-`) && f.endsWith(ext));
  if (found.length !== 1) throw new Error(`expected one ${name}-*${ext} from esbuild, got: ${files.join(', ')}`);
  return found[0];
}

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
const workerFiles = Object.fromEntries(Object.keys(workerEntries).map((name) => [name, outputNamed(outputsOf(workers), `${name}.worker`, '.js')]));

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
const js = outputNamed(outputsOf(page), 'graphiql', '.js');
const css = outputNamed(outputsOf(page), 'graphiql', '.css');

const manifest = { js, css, workers: workerFiles, builtAt: new Date().toISOString() };
fs.writeFileSync(path.join(outdir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

const files = fs.readdirSync(outdir);
const bytes = files.reduce((sum, f) => sum + fs.statSync(path.join(outdir, f)).size, 0);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`graphiql: ${files.length} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB in dist/web/graphiql (${seconds} s)`);
