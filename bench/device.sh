#!/bin/bash
# The GPU backends check (bench/device.ts) on a machine with an NVIDIA GPU, python3 with torch and
# torchvision, and no Node: every PyTorch reference case on cpu, cuda and webgpu, then AlexNet and
# ResNet-50 (scripts/export_zoo.py, random weights) timed per backend at batch 1, 8 and 64.
#   bash bench/device.sh pack    here: node, onnxruntime-node (linux x64 only) and the bundled
#                                check into .device/ (about 40 MB), the Vulkan loader's .deb
#                                (libvulkan1, for webgpu) into .gl/; both git-ignored
#   bash bench/device.sh run     there, from the repository root with .device/ and .gl/ beside
#                                it; writes $OUT/device.log
# The CUDA provider: CUDA_PROVIDER_DIR=<folder with onnxruntime-node's libonnxruntime_providers_*.so,
# from ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci on a machine that reaches nuget.org> bash bench/device.sh pack;
# else `run` borrows that of the machine's python onnxruntime-gpu when its version is the same.
# CUDA 12 and cuDNN 9 libraries: the machine's, or those of python's nvidia-* packages.
set -u
case "${1:-}" in
pack)
  set -e
  rm -rf .device .gl && mkdir -p .device/bundle .gl
  npx esbuild bench/device.ts --bundle --platform=node --format=cjs --target=node20 \
    --external:onnxruntime-node --external:onnxruntime-web --external:sharp --outfile=.device/bundle/device.js --log-level=warning
  stage=$(mktemp -d)
  mkdir -p "$stage/node_modules/sharp"
  cp -r node_modules/onnxruntime-node node_modules/onnxruntime-common "$stage/node_modules/"
  # The compiler's preprocessing module imports sharp (native); the check decodes no image.
  echo "module.exports = () => { throw new Error('sharp is not in the device pack'); };" > "$stage/node_modules/sharp/index.js"
  ortbin="$stage/node_modules/onnxruntime-node/bin/napi-v6"
  find "$ortbin" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  rm -rf "$ortbin/linux/arm64"
  if [ -n "${CUDA_PROVIDER_DIR:-}" ]; then cp "$CUDA_PROVIDER_DIR"/libonnxruntime_providers_*.so "$ortbin/linux/x64/"; fi
  tar cf - -C "$stage" node_modules | xz -T2 -6 > .device/ort.tar.xz
  xz -T2 -6 -c "$(command -v node)" > .device/node.xz
  rm -rf "$stage"
  (cd .gl && apt-get download libvulkan1)
  du -sh .device .gl
  ;;
run)
  out=${OUT:-/tmp/device-out}
  mkdir -p "$out"
  exec > >(tee "$out/device.log") 2>&1
  nvidia-smi -L
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$icd" ] && export VK_DRIVER_FILES=$icd && break
  done
  echo "Vulkan driver: ${VK_DRIVER_FILES:-none found}"
  mkdir -p /tmp/dev
  xz -dc .device/node.xz > /tmp/dev/node && chmod +x /tmp/dev/node
  tar xJf .device/ort.tar.xz -C .device
  /tmp/dev/node --version
  ortbin=.device/node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  ortversion=$(/tmp/dev/node -p "require('./.device/node_modules/onnxruntime-node/package.json').version")
  python3 - "$ortversion" "$ortbin" <<'PY'
import glob, os, shutil, sys
version, ortbin = sys.argv[1:]
try:
    import onnxruntime as o
    print('python onnxruntime', o.__version__, o.get_available_providers())
    capi = os.path.join(os.path.dirname(o.__file__), 'capi')
    if not glob.glob(os.path.join(ortbin, 'libonnxruntime_providers_cuda.so')) and o.__version__ == version:
        for lib in glob.glob(os.path.join(capi, 'libonnxruntime_providers_*.so')):
            shutil.copy(lib, ortbin)
            print('borrowed', lib)
except ImportError:
    print('no python onnxruntime')
PY
  # CUDA and cuDNN libraries from python's nvidia-* wheels, where the system has none.
  nvlibs=$(python3 -c "import glob, nvidia, os; print(':'.join(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], '*', 'lib')))))" 2>/dev/null)
  [ -n "$nvlibs" ] && export LD_LIBRARY_PATH="$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  mkdir -p /tmp/zoo
  timeout 300 python3 scripts/export_zoo.py /tmp/zoo alexnet resnet50 || echo "AlexNet/ResNet-50 export failed: no timings"
  ORT_THREADS=$(nproc) REPEATS=${REPEATS:-7} WARMUP=${WARMUP:-3} timeout 480 /tmp/dev/node .device/bundle/device.js cpu,cuda,webgpu /tmp/zoo
  echo "exit $?"
  ;;
*)
  echo "usage: bash bench/device.sh pack|run" >&2
  exit 2
  ;;
esac
