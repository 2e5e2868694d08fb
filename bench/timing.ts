/** Timing helpers shared by the benchmarks. */

export const REPEATS = Number(process.env.REPEATS ?? 7);

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median wall time of `fn` over `repeats` runs, after one warm-up run. */
export async function timeIt(fn: () => Promise<unknown>, repeats = REPEATS): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}
