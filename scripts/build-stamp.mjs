// Whether dist/ was built from the sources as they are now, so that `npm start` builds only when
// something changed (a build takes a minute; starting the built server, seconds).
//   node scripts/build-stamp.mjs fresh   exit 0 if dist/ is current, 1 if it must be built
//   node scripts/build-stamp.mjs write   after a build: remember what it was built from
// The stamp (dist/.build-stamp) is the sha256 of every build input's path and bytes (a hash, not
// mtimes: a checkout or a copy changes mtimes, not sources).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const INPUTS = ['src', 'resolvers', 'test', 'bench', 'scripts', 'tsconfig.json', 'package.json', 'package-lock.json'];
const OUTPUTS = ['dist/src/main.js', 'dist/web/graphiql/manifest.json', 'dist/web/gallery/manifest.json'];
const SOURCE = /\.(ts|tsx|mts|mjs|js|json|css|html)$/; // not fixtures' .onnx and pictures
const STAMP = path.join(ROOT, 'dist', '.build-stamp');

function files(rel) {
  const full = path.join(ROOT, rel);
  if (!fs.existsSync(full)) return [];
  if (!fs.statSync(full).isDirectory()) return SOURCE.test(rel) ? [rel] : [];
  return fs
    .readdirSync(full, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.') && e.name !== '__pycache__')
    .flatMap((e) => files(path.join(rel, e.name)));
}

function sourcesHash() {
  const hash = createHash('sha256');
  for (const file of INPUTS.flatMap(files).sort())
    hash
      .update(`${file}\0`)
      .update(fs.readFileSync(path.join(ROOT, file)))
      .update('\0');
  return hash.digest('hex');
}

const command = process.argv[2];
if (command === 'write') {
  fs.writeFileSync(STAMP, `${sourcesHash()}\n`);
} else if (command === 'fresh') {
  const built = OUTPUTS.every((f) => fs.existsSync(path.join(ROOT, f))) && fs.existsSync(STAMP) && fs.readFileSync(STAMP, 'utf8').trim() === sourcesHash();
  if (!built) console.error('convscope: the sources changed since the last build (or there is none): building');
  process.exit(built ? 0 : 1);
} else {
  console.error('usage: node scripts/build-stamp.mjs fresh|write');
  process.exit(2);
}
