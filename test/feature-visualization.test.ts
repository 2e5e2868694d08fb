/**
 * Filter.featureVisualization on the default model (fashion-zfnet) and its demo dataset: the
 * optimised image activates its unit more than the unit's top-1 dataset image does (by the index
 * the server builds on start), read back from its PNG through the model; the same seed gives the
 * same bytes on another server, another seed other bytes; results are cached; bad arguments are
 * BAD_USER_INPUT. startFeatureVisualization runs the same as a job: progress over jobProgress, the
 * field's bytes, DONE at once when asked again, cancellable, the field's error codes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import sharp from 'sharp';
import { errorCode, gql, jobUpdates, ROOT, startTestServer } from './helpers';

type Server = Awaited<ReturnType<typeof startTestServer>>;
const ENV = { MODELS_DIR: path.join(ROOT, 'models'), DATASETS_DIR: path.join(ROOT, 'datasets') };

const FV = `query($layer: String!, $filter: Int!, $objective: FeatureObjective!, $position: PositionInput, $steps: Int!, $seed: Int!, $batch: Int! = 1, $diversity: Float! = 0) {
  model(name: "fashion-zfnet") { layer(name: $layer) { filter(index: $filter) {
    featureVisualization(objective: $objective, position: $position, steps: $steps, seed: $seed, batch: $batch, diversity: $diversity) { size values imageUrl tensorUrl }
  } } } }`;

async function png(server: Server, url: string): Promise<Buffer> {
  const res = await fetch(`${server.url}${url}`);
  assert.equal(res.status, 200, url);
  return Buffer.from(await res.arrayBuffer());
}

describe('feature visualization of the default model', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer(ENV);
    // The top-9 index the default model asks for on start.
    for (let i = 0; ; i++) {
      const jobs = await gql(server.url, '{ jobs { state model } }');
      if (jobs.data.jobs.some((j: { state: string; model: string }) => j.model === 'fashion-zfnet' && j.state === 'DONE')) break;
      assert.ok(i < 600, 'the index is built within a minute');
      await sleep(100);
    }
  });
  afterAll(() => server.close());

  // A conv unit and ReLU units (optimised through their input) of an early, a late and a dense layer.
  for (const [layer, filter] of [
    ['/conv3/Conv', 3],
    ['/relu2/Relu', 5],
    ['/relu5/Relu', 7],
    ['/relu6/Relu', 3],
  ] as const) {
    test(`${layer} filter ${filter}: at the top-1 image's position, the optimised picture beats the top-1 image`, async () => {
      const top = await gql(
        server.url,
        `query($layer: String!, $filter: Int!) { model(name: "fashion-zfnet") { layer(name: $layer) { filter(index: $filter) {
          topActivations(dataset: "fashion-mnist-demo", first: 1) { nodes { value position { y x } image { name } } } } } } }`,
        { layer, filter },
      );
      assert.equal(top.errors, undefined, JSON.stringify(top.errors));
      const top1 = top.data.model.layer.filter.topActivations.nodes[0];
      const res = await gql(server.url, FV, { layer, filter, objective: 'POSITION', position: top1.position, steps: 512, seed: 0 });
      assert.equal(res.errors, undefined, JSON.stringify(res.errors));
      const fv = res.data.model.layer.filter.featureVisualization;
      assert.equal(fv.size, 28);
      // The picture itself, 8-bit, through the model as any image: its activation at that unit.
      const bytes = await png(server, fv.imageUrl);
      const meta = await sharp(bytes).metadata();
      assert.deepEqual([meta.width, meta.height], [28, 28]);
      const services = server.services;
      const model = services.registry.models.get('fashion-zfnet')!;
      const unit = model.layers.find((l) => l.name === layer)!;
      const map = await services.inference.activation(model, unit, { sha256: createHash('sha256').update(bytes).digest('hex'), bytes });
      const [, H, W] = unit.units;
      const value = map[(filter * H + top1.position.y) * W + top1.position.x];
      console.log(
        `${layer} ${filter}: top-1 ${top1.value.toFixed(3)} (${top1.image.name}), feature visualization ${fv.values[0].toFixed(3)}, its PNG ${value.toFixed(3)}: ×${(value / top1.value).toFixed(2)}`,
      );
      assert.ok(value > top1.value, `the PNG gives ${value}, the top-1 image ${top1.value}`);
      assert.ok(Math.abs(value - fv.values[0]) <= 0.05 * Math.abs(fv.values[0]), `values[0] ${fv.values[0]} is the picture's (${value}) within 8-bit rounding`);
    });
  }

  test("CHANNEL_MEAN: the picture's channel mean beats the top-1 image's", async () => {
    const [layer, filter] = ['/relu4/Relu', 10];
    const top = await gql(
      server.url,
      `query($layer: String!, $filter: Int!) { model(name: "fashion-zfnet") { layer(name: $layer) { filter(index: $filter) {
        topActivations(dataset: "fashion-mnist-demo", first: 1) { nodes { image { id } } } } } } }`,
      { layer, filter },
    );
    const image = top.data.model.layer.filter.topActivations.nodes[0].image.id;
    const res = await gql(server.url, FV, { layer, filter, objective: 'CHANNEL_MEAN', steps: 512, seed: 0 });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const fv = res.data.model.layer.filter.featureVisualization;
    const bytes = await png(server, fv.imageUrl);
    const means = await gql(
      server.url,
      `query($layer: String!, $filter: Int!, $top: ID!, $fv: String!) { model(name: "fashion-zfnet") { layer(name: $layer) { filter(index: $filter) {
        top: activation(image: { id: $top }) { mean } fv: activation(image: { base64: $fv }) { mean } } } } }`,
      { layer, filter, top: image, fv: bytes.toString('base64') },
    );
    assert.equal(means.errors, undefined, JSON.stringify(means.errors));
    const { top: topMean, fv: fvMean } = means.data.model.layer.filter;
    console.log(`${layer} ${filter} channel mean: top-1 image ${topMean.mean.toFixed(3)}, feature visualization ${fvMean.mean.toFixed(3)}`);
    assert.ok(fvMean.mean > topMean.mean, `${fvMean.mean} vs ${topMean.mean}`);
  });

  test('the same seed gives the same bytes on a fresh server, another seed other bytes; a repeat is a cache hit', async () => {
    const vars = { layer: '/relu3/Relu', filter: 1, objective: 'CHANNEL_MEAN', steps: 128, seed: 7 };
    const first = await gql(server.url, FV, vars);
    assert.equal(first.errors, undefined, JSON.stringify(first.errors));
    const runs = server.services.engine.stats.runs;
    const again = await gql(server.url, FV, vars);
    assert.equal(server.services.engine.stats.runs, runs, 'the repeat runs nothing');
    assert.deepEqual(again.data, first.data);
    const other = await startTestServer({ ...ENV, RESPONSE_CACHE: '0' });
    try {
      const fresh = await gql(other.url, FV, vars);
      const a = first.data.model.layer.filter.featureVisualization;
      const b = fresh.data.model.layer.filter.featureVisualization;
      assert.equal(b.imageUrl, a.imageUrl, 'the PNG is named by its bytes: the same name is the same bytes');
      assert.equal(b.tensorUrl, a.tensorUrl, 'and the float32 tensor too');
      assert.ok((await png(other, b.imageUrl)).equals(await png(server, a.imageUrl)));
      const seeded = await gql(other.url, FV, { ...vars, seed: 8 });
      assert.notEqual(seeded.data.model.layer.filter.featureVisualization.imageUrl, a.imageUrl);
    } finally {
      await other.close();
    }
  });

  test('a batch with diversity: two different images, each with its value', async () => {
    const res = await gql(server.url, FV, { layer: '/relu3/Relu', filter: 2, objective: 'CHANNEL_MEAN', steps: 64, seed: 1, batch: 2, diversity: 100 });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
    const fv = res.data.model.layer.filter.featureVisualization;
    assert.equal(fv.values.length, 2);
    const { data, info } = await sharp(await png(server, fv.imageUrl))
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [28 * 2 + 2, 28]);
    const tile = (b: number) =>
      Buffer.concat(
        Array.from({ length: 28 }, (_, y) => data.subarray((y * info.width + b * 30) * info.channels, (y * info.width + b * 30 + 28) * info.channels)),
      );
    assert.ok(!tile(0).equals(tile(1)));
  });

  test('arguments outside the limits, or that do not fit, are BAD_USER_INPUT, and the server keeps serving', async () => {
    const base = { layer: '/relu3/Relu', filter: 1, objective: 'CHANNEL_MEAN', steps: 16, seed: 0 };
    for (const [vars, argument] of [
      [{ ...base, steps: 0 }, 'steps'],
      [{ ...base, steps: 1_000_000 }, undefined], // priced beyond MAX_QUERY_COST first
      [{ ...base, objective: 'POSITION' }, 'position'],
      [{ ...base, objective: 'POSITION', position: { y: 6, x: 0 } }, 'position'],
      [{ ...base, position: { y: 0, x: 0 } }, 'position'],
      [{ ...base, diversity: 1 }, 'diversity'],
      [{ ...base, batch: 9 }, 'batch'],
      [{ ...base, seed: -1 }, 'seed'],
    ] as const) {
      const res = await gql(server.url, FV, vars);
      if (argument) {
        assert.equal(errorCode(res), 'BAD_USER_INPUT', JSON.stringify([vars, res.errors]));
        assert.equal(res.errors![0].extensions!.argument, argument, JSON.stringify(res.errors));
      } else {
        assert.equal(errorCode(res), 'QUERY_TOO_COMPLEX', JSON.stringify(res.errors));
      }
    }
    const ok = await gql(server.url, FV, base);
    assert.equal(ok.errors, undefined);
  });
});

const JOB = 'id kind state unitsDone unitsTotal url error';
const START = `mutation($layer: String!, $filter: Int!, $objective: FeatureObjective! = CHANNEL_MEAN, $position: PositionInput, $steps: Int!, $seed: Int!, $diversity: Float! = 0) {
  startFeatureVisualization(model: "fashion-zfnet", layer: $layer, filter: $filter, objective: $objective, position: $position, steps: $steps, seed: $seed, diversity: $diversity) { ${JOB} } }`;

type JobEvent = { id: string; kind: string; state: string; unitsDone: number; unitsTotal: number; url: string | null; error: string | null };

/** Every jobProgress event of a job until the subscription ends; `onEvent` sees each as it comes. */
function progress(server: Server, id: string, onEvent?: (e: JobEvent) => void): Promise<JobEvent[]> {
  return jobUpdates<JobEvent>(server.url, id, JOB, onEvent);
}

describe('startFeatureVisualization: the field as a job', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer(ENV);
  });
  afterAll(() => server.close());

  test("DONE with growing progress over jobProgress; the field's bytes; asked again (or the field) runs nothing", async () => {
    const vars = { layer: '/relu3/Relu', filter: 4, steps: 1024, seed: 3 };
    const started = await gql(server.url, START, vars);
    assert.equal(started.errors, undefined, JSON.stringify(started.errors));
    const job: JobEvent = started.data.startFeatureVisualization;
    assert.equal(job.kind, 'FEATURE_VISUALIZATION');
    assert.equal(job.state, 'RUNNING');
    assert.equal(job.url, null);
    const events = await progress(server, job.id);
    const last = events.at(-1)!;
    assert.equal(last.state, 'DONE', JSON.stringify(last));
    assert.deepEqual([last.unitsDone, last.unitsTotal], [1024, 1024]);
    const done = events.filter((e) => e.state === 'RUNNING').map((e) => e.unitsDone);
    console.log(`job progress events (steps done): ${done.join(' ')}`);
    assert.ok(done.length >= 3 && done.some((d) => d > 0 && d < 1024), `progress arrives while it runs: ${done.join(' ')}`);
    assert.deepEqual(
      done,
      [...done].sort((a, b) => a - b),
      'steps done only grow',
    );
    assert.match(last.url!, /\.png$/);

    // Asked again, and the field with the same arguments: the cached result, nothing runs.
    const runs = server.services.engine.stats.runs;
    const again = await gql(server.url, START, vars);
    assert.deepEqual(again.data.startFeatureVisualization, last);
    const field = await gql(server.url, FV, { ...vars, objective: 'CHANNEL_MEAN' });
    assert.equal(field.errors, undefined, JSON.stringify(field.errors));
    assert.equal(field.data.model.layer.filter.featureVisualization.imageUrl, last.url);
    assert.equal(server.services.engine.stats.runs, runs, 'neither runs the model');

    // The field on a server of its own computes the same bytes; and there the job, after the field, is DONE at once.
    const other = await startTestServer({ ...ENV, RESPONSE_CACHE: '0' });
    try {
      const fresh = await gql(other.url, FV, { ...vars, objective: 'CHANNEL_MEAN' });
      assert.equal(fresh.errors, undefined, JSON.stringify(fresh.errors));
      const url = fresh.data.model.layer.filter.featureVisualization.imageUrl;
      assert.ok((await png(other, url)).equals(await png(server, last.url!)), "the job's PNG is the field's");
      const otherRuns = other.services.engine.stats.runs;
      const found = (await gql(other.url, START, vars)).data.startFeatureVisualization;
      assert.deepEqual([found.id, found.state, found.unitsDone, found.url], [job.id, 'DONE', 1024, url]);
      assert.equal(other.services.engine.stats.runs, otherRuns);
    } finally {
      await other.close();
    }
  }, 300_000);

  test('cancelJob stops it at its next step, caches nothing; started again, it runs again', async () => {
    const vars = { layer: '/relu2/Relu', filter: 2, steps: 2048, seed: 5 };
    const job: JobEvent = (await gql(server.url, START, vars)).data.startFeatureVisualization;
    let cancelled: Promise<unknown> | undefined;
    const events = await progress(server, job.id, (e) => {
      if (!cancelled && e.unitsDone > 0) cancelled = gql(server.url, 'mutation($id: ID!) { cancelJob(id: $id) { state } }', { id: job.id });
    });
    assert.ok(cancelled, 'it made progress before the cancel');
    await cancelled;
    const last = events.at(-1)!;
    assert.equal(last.state, 'CANCELLED', JSON.stringify(last));
    assert.equal(last.url, null);
    assert.ok(last.unitsDone < 2048, `stopped early: ${last.unitsDone}`);
    const restarted = (await gql(server.url, START, vars)).data.startFeatureVisualization;
    assert.deepEqual([restarted.id, restarted.state], [job.id, 'RUNNING'], 'nothing was cached: it runs again');
    await gql(server.url, 'mutation($id: ID!) { cancelJob(id: $id) { state } }', { id: job.id });
    const ended = await progress(server, job.id);
    assert.equal(ended.at(-1)!.state, 'CANCELLED');
  }, 120_000);

  test('past FEATVIS_MAX_JOBS running at once, another is OVERLOADED; when one ends, it starts', async () => {
    const limited = await startTestServer({ ...ENV, FEATVIS_MAX_JOBS: '1' });
    try {
      const first: JobEvent = (await gql(limited.url, START, { layer: '/relu2/Relu', filter: 3, steps: 2048, seed: 7 })).data.startFeatureVisualization;
      assert.equal(first.state, 'RUNNING');
      const second = { layer: '/relu2/Relu', filter: 4, steps: 16, seed: 7 };
      const refused = await gql(limited.url, START, second);
      assert.equal(errorCode(refused), 'OVERLOADED', JSON.stringify(refused.errors));
      assert.match(refused.errors![0].message, /FEATVIS_MAX_JOBS/);
      await gql(limited.url, 'mutation($id: ID!) { cancelJob(id: $id) { state } }', { id: first.id });
      assert.equal((await progress(limited, first.id)).at(-1)!.state, 'CANCELLED');
      const started = await gql(limited.url, START, second);
      assert.equal(started.errors, undefined, JSON.stringify(started.errors));
      assert.equal((await progress(limited, started.data.startFeatureVisualization.id)).at(-1)!.state, 'DONE');
    } finally {
      await limited.close();
    }
  }, 120_000);

  test("bad arguments are the field's errors, and start nothing", async () => {
    const base = { layer: '/relu3/Relu', filter: 1, steps: 16, seed: 0 };
    const jobs = (await gql(server.url, '{ jobs { id } }')).data.jobs.length;
    for (const [vars, code, argument] of [
      [{ ...base, steps: 0 }, 'BAD_USER_INPUT', 'steps'],
      [{ ...base, steps: 4096 }, 'BAD_USER_INPUT', 'steps'],
      [{ ...base, objective: 'POSITION' }, 'BAD_USER_INPUT', 'position'],
      [{ ...base, diversity: 1 }, 'BAD_USER_INPUT', 'diversity'],
      [{ ...base, seed: -1 }, 'BAD_USER_INPUT', 'seed'],
      [{ ...base, layer: '/nope' }, 'NOT_FOUND', undefined],
      [{ ...base, filter: 9999 }, 'BAD_USER_INPUT', 'index'],
    ] as const) {
      const res = await gql(server.url, START, vars);
      assert.equal(errorCode(res), code, JSON.stringify([vars, res.errors]));
      if (argument) assert.equal(res.errors![0].extensions!.argument, argument, JSON.stringify(res.errors));
    }
    assert.equal((await gql(server.url, '{ jobs { id } }')).data.jobs.length, jobs);
  });
});
