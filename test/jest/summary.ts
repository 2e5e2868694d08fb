/**
 * A jest reporter that ends the run with one plain line, `jest: N passed, N failed, N skipped`, which CI's log
 * reader counts (it knows no jest summary); the default reporter still prints everything else.
 */
import type { AggregatedResult } from '@jest/test-result';

export default class PlainSummary {
  onRunComplete(_contexts: unknown, results: AggregatedResult): void {
    const skipped = results.numPendingTests + results.numTodoTests;
    // a file that could not run failed even though none of its tests did
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    process.stderr.write(`jest: ${results.numPassedTests} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
