// For scripts/node-smoke.sh (node --import): better-sqlite3 loads the addon compiled for this
// Node (SMOKE_SQLITE_ADDON) instead of the installed one, which is built for the machine's Node.
import Module from 'node:module';

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request.endsWith('better_sqlite3.node')) return process.env.SMOKE_SQLITE_ADDON;
  return resolve.call(this, request, ...rest);
};
