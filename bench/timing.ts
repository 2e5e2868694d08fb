/** Timing helpers shared by the benchmarks. */

export const REPEATS = Number(process.env.REPEATS ?? 15);
/**
 * Runs before timing. ONNX Runtime takes a few runs at a new input shape to settle (its memory
 * planning): with one warm-up run, medians of 7 came out up to 1.5× slow at batch 8.
 */
export const WARMUP = Number(process.env.WARMUP ?? 5);

/**
 * The environment PyTorch's reference runs get: the server's glibc tunables removed (a low
 * mmap_threshold, good for the server's memory, made torch's own allocations 2–3× slower).
 */
export function torchEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES;
  return env;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median wall time of `fn` over `repeats` runs, after WARMUP runs. */
export async function timeIt(fn: () => Promise<unknown>, repeats = REPEATS): Promise<number> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}
