/**
 * Real servers for the tests, each on a free loopback port in a temporary folder: redis-server
 * (the Redis cache tier) and PostgreSQL (the shared index store). .ci/run installs both.
 */
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

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

export interface PostgresServer {
  /** A new, empty database on the server: its URL (DATABASE_URL). */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** The folder of PostgreSQL's server programs: PG_BIN, or Debian's newest /usr/lib/postgresql/<version>/bin. */
function postgresBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'postgres'))) : [];
  if (versions.length === 0) {
    assert.fail(
      'PostgreSQL not found under /usr/lib/postgresql: the test needs a real server. Install it (apt-get install postgresql; .ci/run does) or set PG_BIN to the folder of initdb and postgres.',
    );
  }
  return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin');
}

let databases = 0;

/**
 * A throwaway PostgreSQL on a free loopback port, its cluster in a temporary folder, without
 * fsync (nothing here must survive a crash of the machine). PostgreSQL refuses to run as root:
 * as root, it runs as the user `postgres` (which Debian's package creates).
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBin();
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-pg-'));
  const asUser = (program: string, args: string[]): [string, string[]] =>
    process.getuid?.() === 0
      ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', path.join(bin, program), ...args]]
      : [path.join(bin, program), args];
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    fs.chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  execFileSync(...asUser('initdb', ['-D', data, '-U', 'convscope', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C.UTF-8']), { stdio: 'pipe' });
  const proc = await spawnReady(
    ...asUser('postgres', ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-F', '-c', 'max_connections=200']),
    /ready to accept connections/,
    'postgres',
  );
  const url = (db: string) => `postgres://convscope@127.0.0.1:${port}/${db}`;
  return {
    async createDatabase() {
      const name = `convscope_${process.pid}_${++databases}`;
      const admin = new pg.Client({ connectionString: url('postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    async stop() {
      await stopProcess(proc, 'SIGINT'); // fast shutdown
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
