/**
 * jest's runner for this suite (jest.config.mjs): each test file runs under jest-circus in a Node process of its
 * own (child.ts), one file after another; jest finds the files, and its reporters print the results and the summary.
 *
 * Why not jest's default runner: it runs each file in a vm context with globals of its own, so what Node itself or
 * a native addon makes (fetch's JSON, better-sqlite3's rows, onnxruntime-node's Float32Arrays) belongs to another
 * realm than the test's own objects: node:assert's deepEqual refuses them ("same structure but not
 * reference-equal") and onnxruntime-common refuses the tensors. A process per file is also the isolation the suite
 * had under node:test: a file's servers, native addons and globals are its own.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { type AssertionResult, createEmptyTestResult, type Test, type TestResult } from '@jest/test-result';
import type { Config } from '@jest/types';
import { formatExecError, formatResultsErrors } from 'jest-message-util';
import type { FileResult } from './child';

/** How long a file's process may take to exit after its last test: longer means it left something open. */
const EXIT_GRACE_MS = 30_000;

type OnStart = (test: Test) => Promise<void>;
type OnResult = (test: Test, result: TestResult) => Promise<void>;
type OnFailure = (test: Test, error: { message: string; stack?: string }) => Promise<void>;

export default class ProcessPerFileRunner {
  /** One file at a time: the files start servers, Redis, PostgreSQL and Chromium, and measure time. */
  readonly isSerial = true;

  constructor(private readonly globalConfig: Config.GlobalConfig) {}

  async runTests(tests: Test[], _watcher: unknown, onStart: OnStart, onResult: OnResult, onFailure: OnFailure): Promise<void> {
    for (const test of tests) {
      await onStart(test);
      try {
        await onResult(test, await this.runFile(test));
      } catch (e) {
        await onFailure(test, e instanceof Error ? e : new Error(String(e)));
      }
    }
  }

  private runFile(test: Test): Promise<TestResult> {
    const start = Date.now();
    const child = fork(path.join(__dirname, 'child.js'), [test.path], {
      // stack traces (and jest's code frames) in the TypeScript sources
      execArgv: [...process.execArgv, '--enable-source-maps'],
      env: {
        ...process.env,
        CONVSCOPE_JEST_TIMEOUT: String(this.globalConfig.testTimeout ?? 5000),
        CONVSCOPE_JEST_NAME_PATTERN: this.globalConfig.testNamePattern ?? '',
      },
    });
    return new Promise((resolve, reject) => {
      let result: FileResult | undefined;
      let lingered = false;
      let grace: NodeJS.Timeout | undefined;
      child.on('message', (message) => {
        result = message as FileResult;
        grace = setTimeout(() => {
          lingered = true;
          child.kill('SIGKILL');
        }, EXIT_GRACE_MS);
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        clearTimeout(grace);
        if (!result) {
          const crash = new Error(`its process ended (${signal ?? `exit code ${code}`}) before its tests finished; what it printed is above`);
          crash.stack = crash.message; // the runner's own frames would only mislead
          reject(crash);
          return;
        }
        const errors = [...result.errors];
        if (lingered)
          errors.push(`its process did not exit within ${EXIT_GRACE_MS / 1000} s of its last test: a server, socket, child process or timer was left open`);
        resolve(this.toTestResult(test, result, errors, start, Date.now()));
      });
    });
  }

  /** circus's results as jest's reporters want them (what jest-circus's own adapter does in jest's sandbox). */
  private toTestResult(test: Test, file: FileResult, errors: string[], start: number, end: number): TestResult {
    const result = createEmptyTestResult();
    const config = test.context.config;
    result.testFilePath = test.path;
    result.displayName = config.displayName;
    result.perfStats = { ...result.perfStats, start, end, runtime: end - start, slow: (end - start) / 1000 > config.slowTestThreshold };
    result.testResults = file.tests.map((t): AssertionResult => {
      const ancestorTitles = t.names.slice(0, -1);
      const title = t.names[t.names.length - 1];
      const status = t.status === 'skip' ? 'pending' : t.status === 'todo' ? 'todo' : t.errors.length > 0 ? 'failed' : 'passed';
      return {
        ancestorTitles,
        title,
        fullName: t.names.join(' '),
        status,
        duration: t.duration,
        failureMessages: t.errors,
        failureDetails: [],
        numPassingAsserts: 0,
        location: null,
      };
    });
    for (const t of result.testResults) {
      if (t.status === 'passed') result.numPassingTests++;
      else if (t.status === 'failed') result.numFailingTests++;
      else if (t.status === 'pending') result.numPendingTests++;
      else result.numTodoTests++;
    }
    result.failureMessage = formatResultsErrors(result.testResults, config, this.globalConfig, test.path);
    if (errors.length > 0) {
      result.testExecError = { message: errors.join('\n'), stack: errors.join('\n') };
      const execError = formatExecError(result.testExecError, config, this.globalConfig, test.path);
      result.failureMessage = result.failureMessage ? `${result.failureMessage}\n\n${execError}` : execError;
    }
    return result;
  }
}
