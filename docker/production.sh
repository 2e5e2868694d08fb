#!/bin/sh
# Leaves in ./node_modules only what the server loads at run time: the production dependencies,
# onnxruntime-node's binaries for this platform (not those of macOS, Windows or the other CPU),
# onnxruntime-web's Node build and its one WebAssembly file, and better-sqlite3's compiled addon
# without its sources and objects. Run in the app's folder after the build, by docker/Dockerfile,
# docker/Dockerfile.cuda and test/container.test.ts (on its copy of the app). Downloads nothing.
set -eu
npm prune --omit=dev --no-audit --no-fund
platform=$(node -p 'process.platform + "/" + process.arch')
ort=node_modules/onnxruntime-node/bin/napi-v6
for dir in "$ort"/*/*; do
  [ "$dir" = "$ort/$platform" ] || rm -rf "$dir"
done
find "$ort" -mindepth 1 -maxdepth 1 -type d -empty -delete
find node_modules/onnxruntime-web/dist -type f ! -name 'ort.node.min.js' ! -name 'ort-wasm-simd-threaded.wasm' ! -name 'ort-wasm-simd-threaded.mjs' -delete
sqlite=node_modules/better-sqlite3
find "$sqlite/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$sqlite/build/Release" -mindepth 1 -maxdepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
rm -rf "$sqlite/deps" "$sqlite/src"
