// `npm run test:unit`: the tests that need neither a browser nor a Redis or PostgreSQL server nor a
// Vulkan driver, for the inner loop (run after `tsc`). `npm test` runs every test.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const NEEDS = {
  'gallery.test.js': 'Chromium',
  'graphiql.test.js': 'Chromium',
  'cache.test.js': 'redis-server',
  'index.test.js': 'PostgreSQL',
  'replicas.test.js': 'redis-server and PostgreSQL',
  'workers.test.js': 'redis-server and PostgreSQL',
  'cross-origin.test.js': 'Chromium',
  'embed.test.js': 'Chromium',
  'webgpu.test.js': "Mesa's Vulkan driver",
};

const dir = path.join(import.meta.dirname, '..', 'dist', 'test');
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.test.js') && !(f in NEEDS))
  .sort()
  .map((f) => path.join(dir, f));
const jest = createRequire(import.meta.url).resolve('jest/bin/jest');
const run = spawnSync(process.execPath, [jest, ...files], { stdio: 'inherit' });
process.exit(run.status ?? 1);
