// Regenerates src/onnx/onnx.proto.json (the JSON descriptor protobufjs loads at run time)
// from src/onnx/onnx.proto (copied from the ONNX project, Debian's python3-onnx 1.12).
// Usage: node scripts/gen-onnx-proto.mjs
import protobuf from 'protobufjs';
import { writeFileSync } from 'node:fs';
const root = protobuf.loadSync(new URL('../src/onnx/onnx.proto', import.meta.url).pathname);
writeFileSync(new URL('../src/onnx/onnx.proto.json', import.meta.url), JSON.stringify(root.toJSON()) + '\n');
