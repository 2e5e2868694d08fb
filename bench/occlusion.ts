/**
 * Benchmark (run by hand): occlusion sensitivity on AlexNet 224×224 (torchvision layout, random
 * weights, 1000 classes), occluder size 32, stride 8 (25×25 = 625 positions), default layer.
 *   /usr/bin/python3 bench/alexnet.py /tmp/alexnet/alexnet.onnx
 *   npm run build && node dist/bench/occlusion.js /tmp/alexnet [batch=16]
 * Prints: the raw ORT forward pass (image → logits) against the raw occlusion graph at the same
 * batch (medians of interleaved runs); then, three rounds of: as many forward images as the grid
 * has positions, a whole grid through the engine (micro-batcher, streaming), and one uncached
 * Model.occlusion query over HTTP with every map's PNG and .npy; and the median ratio of occluder
 * positions per second to forward images per second (1.0 = occlusion costs nothing beyond the
 * forward passes it needs). The machine is shared and noisy: compare ratios, not times.
 */
import { compileForward } from '../src/compiler/forward';
import { compileOcclusion, OCCLUSION_INPUTS } from '../src/compiler/occlusion';
import { loadConfig } from '../src/config';
import { defaultOcclusionLayer, occlude } from '../src/engine/occlusion';
import { startServer } from '../src/server';
import { createServices } from '../src/service/services';
import { median, REPEATS } from './timing';

const dir = process.argv[2] ?? '/tmp/alexnet';
const BATCH = Number(process.argv[3] ?? 16);
const SIZE = 32;
const STRIDE = 8;

function randomImage(n: number, seed = 1): Float32Array {
  const data = new Float32Array(n);
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    data[i] = (seed / 2147483648 - 0.5) * 2;
  }
  return data;
}

(async () => {
  const env = {
    MODELS_DIR: dir,
    CACHE_DIR: '/tmp/convscope-bench',
    LOG_LEVEL: 'warn',
    ORT_THREADS: '2',
    MAX_BATCH: String(BATCH),
    PORT: '0',
    HOST: '127.0.0.1',
  };
  const s = await createServices(loadConfig(env));
  const model = s.registry.models.get('alexnet');
  if (!model) throw new Error(`no alexnet.onnx in ${dir}: run /usr/bin/python3 bench/alexnet.py ${dir}/alexnet.onnx`);
  const layer = defaultOcclusionLayer(model.graph, model.layers)!;
  const [C, H, W] = model.inputShape;
  const { Tensor } = s.engine.runtime;
  const image = randomImage(C * H * W);
  const positions = (Math.floor((H - SIZE) / STRIDE) + 1) * (Math.floor((W - SIZE) / STRIDE) + 1);
  console.log(
    `AlexNet ${H}×${W}, layer ${layer.name} ${JSON.stringify(layer.outputShape)}, size ${SIZE}, stride ${STRIDE}: ${positions} positions, batch ${BATCH}, 2 ORT threads`,
  );

  const output = model.graph.outputNames[0];
  const fwd = await s.engine.load('bench-fwd', () => compileForward(model.graph, [output]));
  const batchImages = new Float32Array(BATCH * image.length);
  for (let i = 0; i < BATCH; i++) batchImages.set(image, i * image.length);
  const forwardBatch = () => fwd.session.run({ [model.inputName]: new Tensor('float32', batchImages, [BATCH, C, H, W]) });

  const occ = await s.engine.load('bench-occ', () => compileOcclusion(model.graph, model.inputShape, layer.tensor, layer.outputShape));
  const rows = new Float32Array(BATCH * H);
  const cols = new Float32Array(BATCH * W);
  for (let n = 0; n < BATCH; n++) {
    rows.fill(1, n * H + 64, n * H + 64 + SIZE);
    cols.fill(1, n * W + n * STRIDE, n * W + n * STRIDE + SIZE);
  }
  const feeds = {
    [OCCLUSION_INPUTS.images]: new Tensor('float32', image, [1, C, H, W]),
    [OCCLUSION_INPUTS.image]: new Tensor('int64', new BigInt64Array(BATCH), [BATCH]),
    [OCCLUSION_INPUTS.rows]: new Tensor('float32', rows, [BATCH, 1, H, 1]),
    [OCCLUSION_INPUTS.cols]: new Tensor('float32', cols, [BATCH, 1, 1, W]),
    [OCCLUSION_INPUTS.fill]: new Tensor('float32', new Float32Array(BATCH * C), [BATCH, C, 1, 1]),
  };
  const occBatch = () => occ.session.run(feeds);

  // The machine is shared and noisy: every comparison is made of runs interleaved in time.
  const time = async (fn: () => Promise<unknown>) => {
    const t = performance.now();
    await fn();
    return performance.now() - t;
  };
  await forwardBatch();
  await occBatch();
  const fw: number[] = [];
  const oc: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    fw.push(await time(forwardBatch));
    oc.push(await time(occBatch));
  }
  const forward = median(fw);
  const forwardRate = (BATCH * 1000) / forward;
  const occRaw = median(oc);
  const occRawRate = (BATCH * 1000) / occRaw;
  console.log(`raw ORT forward (image → logits), batch ${BATCH}: ${forward.toFixed(1)} ms → ${forwardRate.toFixed(1)} images/s`);
  console.log(
    `raw occlusion graph, batch ${BATCH}: ${occRaw.toFixed(1)} ms → ${occRawRate.toFixed(1)} positions/s (${(occRawRate / forwardRate).toFixed(2)}× forward)`,
  );

  // Whole grids (engine, micro-batcher, streaming) and uncached GraphQL queries (grid + 3 PNG +
  // 3 .npy, fresh image each), each against as many forward images as positions run just before.
  const server = await startServer(loadConfig(env), s);
  const sharp = (await import('sharp')).default;
  const runs = Math.ceil((positions + 1) / BATCH);
  const rounds: { fwd: number; grid: number; http: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const fwdTime = await time(async () => {
      for (let r = 0; r < runs; r++) await forwardBatch();
    });
    const grid = await time(() =>
      occlude(s.engine, model, {
        layerTensor: layer.tensor,
        layerShape: layer.outputShape,
        image: { key: `bench-${i}`, data: image },
        size: SIZE,
        stride: STRIDE,
        fill: [0, 0, 0],
        batch: BATCH,
      }),
    );
    const raw = Buffer.alloc(H * W * 3);
    for (let j = 0; j < raw.length; j++) raw[j] = (j * 7919 + i * 104729) % 251;
    const png = await sharp(raw, { raw: { width: W, height: H, channels: 3 } })
      .png()
      .toBuffer();
    const query = `query($img: String!) { model(name: "alexnet") { occlusion(image: {base64: $img}, size: ${SIZE}, stride: ${STRIDE}) {
      strongestMapActivation { imageUrl tensorUrl } classProbability { imageUrl tensorUrl } topClass { imageUrl tensorUrl } } } }`;
    const http = await time(async () => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables: { img: png.toString('base64') } }),
      });
      const body = (await res.json()) as { errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
    });
    rounds.push({ fwd: fwdTime, grid, http });
    console.log(
      `round ${i + 1}: ${runs}×${BATCH} forward images ${fwdTime.toFixed(0)} ms (${((runs * BATCH * 1000) / fwdTime).toFixed(1)}/s); ` +
        `grid ${grid.toFixed(0)} ms (${((positions * 1000) / grid).toFixed(1)} positions/s); GraphQL ${http.toFixed(0)} ms (${((positions * 1000) / http).toFixed(1)} positions/s)`,
    );
  }
  await server.close();
  const per = (k: 'grid' | 'http') => median(rounds.map((r) => positions / r[k] / ((runs * BATCH) / r.fwd)));
  console.log(
    `median ratio, occluder positions/s ÷ forward images/s at batch ${BATCH}: grid ${per('grid').toFixed(2)}, GraphQL query ${per('http').toFixed(2)}`,
  );
})();
