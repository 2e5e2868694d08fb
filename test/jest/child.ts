/**
 * One test file under jest-circus, in a Node process of its own (started by runner.ts, which passes the file's
 * path); the results go back to the runner over the IPC channel.
 */
import Module from 'node:module';
import { pathToFileURL } from 'node:url';
import { jestExpect } from '@jest/expect';
import * as circus from 'jest-circus';
import { ModuleMocker } from 'jest-mock';

/** What the runner gets back: one entry per test, with circus's statuses and error stacks. */
export interface FileResult {
  tests: { names: string[]; status: 'done' | 'skip' | 'todo'; errors: string[]; duration: number | null }[];
  /** Errors outside any test, or the file failing to load. */
  errors: string[];
}

// The test files import jest's API from @jest/globals, a module only jest's vm sandbox answers (the package itself
// throws): here it answers with jest-circus's functions, the ones jest's own sandbox hands out.
const mocker = new ModuleMocker(globalThis);
const globals = {
  describe: circus.describe,
  test: circus.test,
  it: circus.it,
  beforeAll: circus.beforeAll,
  afterAll: circus.afterAll,
  beforeEach: circus.beforeEach,
  afterEach: circus.afterEach,
  expect: jestExpect,
  jest: {
    fn: mocker.fn.bind(mocker),
    spyOn: mocker.spyOn.bind(mocker),
    clearAllMocks: mocker.clearAllMocks.bind(mocker),
    resetAllMocks: mocker.resetAllMocks.bind(mocker),
    restoreAllMocks: mocker.restoreAllMocks.bind(mocker),
  },
};
const globalsPath = require.resolve('@jest/globals');
const globalsModule = new Module(globalsPath);
globalsModule.filename = globalsPath;
globalsModule.loaded = true;
globalsModule.exports = globals;
require.cache[globalsPath] = globalsModule;

async function run(file: string): Promise<FileResult> {
  // jest.setTimeout's way of setting the default timeout, read when the run starts
  (globalThis as Record<symbol, unknown>)[Symbol.for('TEST_TIMEOUT_SYMBOL')] = Number(process.env.CONVSCOPE_JEST_TIMEOUT);
  if (process.env.CONVSCOPE_JEST_NAME_PATTERN) circus.getState().testNamePattern = new RegExp(process.env.CONVSCOPE_JEST_NAME_PATTERN, 'i');
  try {
    await import(pathToFileURL(file).href);
  } catch (e) {
    return { tests: [], errors: [e instanceof Error ? (e.stack ?? e.message) : String(e)] };
  }
  const { testResults, unhandledErrors } = await circus.run();
  return {
    tests: testResults.map((t) => ({ names: t.testPath.slice(1), status: t.status, errors: t.errors.map(withoutOwnFrames), duration: t.duration ?? null })),
    errors: unhandledErrors,
  };
}

/** A stack without this file's frames, which would only mislead (jest shows the code of the first frame it keeps). */
function withoutOwnFrames(stack: string): string {
  return stack
    .split('\n')
    .filter((line) => !/^\s+at .*[\\/]jest[\\/]child\.[jt]s:\d+/.test(line))
    .join('\n');
}

run(process.argv[2]).then((result) => process.send!(result, () => process.disconnect()));
