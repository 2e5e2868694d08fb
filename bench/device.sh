#!/bin/bash
# The GPU backends check (bench/device.ts) on a machine with an NVIDIA GPU and no Node.
#   bash bench/device.sh pack    here: node, onnxruntime-node (linux x64 only) and the bundled
#                                check into .device/ (about 36 MB, git-ignored locally)
#   bash bench/device.sh run     there, from the repository root, with .device/ and .gl/ (the
#                                Vulkan loader debs: libvulkan1 …) beside it; writes $OUT/device.log
set -u
case "${1:-}" in
pack)
  set -e
  rm -rf .device && mkdir -p .device/bundle
  npx esbuild bench/device.ts --bundle --platform=node --format=cjs --target=node20 \
    --external:onnxruntime-node --external:onnxruntime-web --outfile=.device/bundle/device.js --log-level=warning
  stage=$(mktemp -d)
  mkdir -p "$stage/node_modules"
  cp -r node_modules/onnxruntime-node node_modules/onnxruntime-common "$stage/node_modules/"
  find "$stage/node_modules/onnxruntime-node/bin" -mindepth 2 -maxdepth 2 ! -name linux -exec rm -rf {} +
  rm -rf "$stage/node_modules/onnxruntime-node/bin/"*/linux/arm64
  tar cf - -C "$stage" node_modules | xz -T2 -6 > .device/ort.tar.xz
  xz -T2 -6 -c "$(command -v node)" > .device/node.xz
  rm -rf "$stage"
  du -sh .device
  ;;
run)
  out=${OUT:-/tmp/device-out}
  mkdir -p "$out"
  exec > >(tee "$out/device.log") 2>&1
  nvidia-smi -L
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd
  ls /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1
  mkdir -p /tmp/dev
  xz -dc .device/node.xz > /tmp/dev/node && chmod +x /tmp/dev/node
  tar xJf .device/ort.tar.xz -C .device
  /tmp/dev/node --version
  python3 -c "import onnxruntime as o; print('python onnxruntime', o.__version__, o.get_available_providers())"
  mkdir -p /tmp/alexnet
  timeout 240 python3 bench/alexnet.py /tmp/alexnet/alexnet.onnx || echo "AlexNet export failed: no timings"
  timeout 400 /tmp/dev/node .device/bundle/device.js cpu,cuda,webgpu /tmp/alexnet
  echo "exit $?"
  ;;
*)
  echo "usage: bash bench/device.sh pack|run" >&2
  exit 2
  ;;
esac
