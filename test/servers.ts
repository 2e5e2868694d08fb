/**
 * Real servers for the tests, each on a free loopback port in a temporary folder: redis-server
 * (the Redis cache tier, BullMQ) and PostgreSQL (the shared index store). .ci/run installs both.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const REDIS_SERVER = process.env.REDIS_SERVER || '/usr/bin/redis-server';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Spawns `command` and resolves once its output matches `ready`. */
async function spawnReady(command: string, args: string[], ready: RegExp, what: string): Promise<ChildProcess> {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 20 s:\n${output}`)), 20_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}:\n${output}`));
    });
  });
  return proc;
}

async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  await exited;
}

export interface RedisServer {
  url: string;
  /** Sends `signal` to the server (SIGKILL: it is gone; SIGSTOP/SIGCONT: it hangs/resumes). */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port (after SIGKILL), empty. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A throwaway redis-server on a free loopback port, without persistence. */
export async function startRedis(): Promise<RedisServer> {
  if (!fs.existsSync(REDIS_SERVER)) {
    assert.fail(
      `redis-server not found at ${REDIS_SERVER}: the test needs a real server. Install it (apt-get install redis-server; .ci/run does) or set REDIS_SERVER to its path.`,
    );
  }
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-redis-'));
  const start = () =>
    spawnReady(
      REDIS_SERVER,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      /ready to accept connections/i,
      'redis-server',
    );
  let proc = await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async signal(signal) {
      if (signal === 'SIGKILL') await stopProcess(proc, 'SIGKILL');
      else proc.kill(signal);
    },
    async restart() {
      await stopProcess(proc, 'SIGKILL');
      proc = await start();
    },
    async stop() {
      proc.kill('SIGCONT');
      await stopProcess(proc);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
