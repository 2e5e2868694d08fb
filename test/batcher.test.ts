/** The micro-batcher's timing rules: one turn's items merge; an idle runtime skips the window. */
import { test } from '@jest/globals';
import assert from 'node:assert/strict';
import { MicroBatcher } from '../src/engine/batcher';

function recorder(runMs = 0) {
  const batches: number[][] = [];
  let running = 0;
  const run = async (items: number[]) => {
    running++;
    batches.push(items);
    await new Promise((resolve) => setTimeout(resolve, runMs));
    running--;
    return items.map((i) => i * 10);
  };
  return { batches, run, idle: () => running === 0 };
}

test('items submitted in one turn of the event loop run as one batch', async () => {
  const r = recorder();
  const b = new MicroBatcher(r.run, { maxBatch: 8, windowMs: 5 });
  assert.deepEqual(await Promise.all([1, 2, 3].map((i) => b.submit(i))), [10, 20, 30]);
  assert.deepEqual(r.batches, [[1, 2, 3]]);
});

test('an idle runtime starts the batch without waiting the window, still merging one turn', async () => {
  const r = recorder();
  const b = new MicroBatcher(r.run, { maxBatch: 8, windowMs: 10_000, idle: r.idle });
  const start = performance.now();
  await Promise.all([1, 2].map((i) => b.submit(i)));
  assert.ok(performance.now() - start < 1000, 'did not wait the 10 s window');
  assert.deepEqual(r.batches, [[1, 2]]);
});

test('while a batch runs, new items wait and go together in the next batch', async () => {
  const r = recorder(100);
  const b = new MicroBatcher(r.run, { maxBatch: 8, windowMs: 20, idle: r.idle });
  const first = b.submit(1);
  await new Promise((resolve) => setTimeout(resolve, 30)); // batch [1] is running
  const later = [2, 3, 4].map((i) => b.submit(i));
  assert.deepEqual(await Promise.all([first, ...later]), [10, 20, 30, 40]);
  assert.deepEqual(r.batches, [[1], [2, 3, 4]]);
});

test('maxBatch splits a long queue', async () => {
  const r = recorder();
  const b = new MicroBatcher(r.run, { maxBatch: 2, windowMs: 5, idle: r.idle });
  await Promise.all([1, 2, 3, 4, 5].map((i) => b.submit(i)));
  assert.deepEqual(r.batches, [[1, 2], [3, 4], [5]]);
});

test('a full batch starts while one runs (made ready for the runtime); at most two are under way, and a part batch waits', async () => {
  let running = 0;
  let most = 0;
  const batches: number[][] = [];
  const b = new MicroBatcher(
    async (items: number[]) => {
      batches.push(items);
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 50));
      running--;
      return items.map((i) => i * 10);
    },
    { maxBatch: 2, windowMs: 5, idle: () => running === 0 },
  );
  const first = [1, 2].map((i) => b.submit(i)); // full: starts
  const second = [3, 4].map((i) => b.submit(i)); // full: starts beside it
  const rest = [5, 6, 7].map((i) => b.submit(i)); // [5, 6] full, but two are under way; [7] a part
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(batches, [
    [1, 2],
    [3, 4],
  ]);
  assert.deepEqual(await Promise.all([...first, ...second, ...rest]), [10, 20, 30, 40, 50, 60, 70]);
  assert.deepEqual(batches, [[1, 2], [3, 4], [5, 6], [7]]);
  assert.equal(most, 2);
});
