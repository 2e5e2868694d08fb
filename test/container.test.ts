/**
 * The Docker image's start, as far as it goes without Docker (which these machines cannot run):
 * docker/Dockerfile's final stage read from the file, its /app put together the way the build
 * does it (the built dist/, node_modules pruned by docker/production.sh, models, datasets), all
 * of it owned by root, and the server started with the image's environment, working folder and
 * command as an unprivileged user (nobody, as the image's USER is not root), with the image's
 * VOLUME as a folder only that user can write. It must serve: /healthz, the image's own
 * HEALTHCHECK command, a GraphQL query; and write nowhere but the volume. Without the image's
 * CACHE_DIR the same start fails as the issue reported (EACCES under /app), saying what to change.
 * Runs as root (to switch users), as CI does.
 */
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, test } from '@jest/globals';
import { ROOT } from './paths';

interface Stage {
  env: Record<string, string>;
  workdir: string;
  user?: string;
  volume?: string;
  /** COPY sources → destinations (relative to workdir), `fromBuild` when copied from the build stage's /app. */
  copies: { from: string; to: string; fromBuild: boolean }[];
  healthcheck?: string[];
  cmd?: string[];
}

/** The final stage of a Dockerfile: its ENV, WORKDIR, COPY, VOLUME, USER, HEALTHCHECK and CMD (the forms used in docker/). */
function finalStage(file: string): Stage {
  const lines = fs.readFileSync(file, 'utf8').replace(/\\\n/g, ' ').split('\n');
  const from = lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true);
  const stage: Stage = { env: {}, workdir: '/', copies: [] };
  for (const line of lines.slice(from + 1)) {
    const [, instruction, rest = ''] = /^(\w+)\s+(.*)$/.exec(line.trim()) ?? [];
    switch (instruction?.toUpperCase()) {
      case 'ENV':
        for (const [, key, value] of rest.matchAll(/(\w+)=(\S+)/g)) stage.env[key] = value;
        break;
      case 'WORKDIR':
        stage.workdir = rest;
        break;
      case 'COPY': {
        const build = /^--from=build\s+\/app\/(\S+)\s+\.\/(\S+)$/.exec(rest);
        const context = /^(\S+)\s+\.\/(\S*)$/.exec(rest);
        if (build) stage.copies.push({ from: build[1], to: build[2], fromBuild: true });
        else if (context && !rest.startsWith('--')) stage.copies.push({ from: context[1], to: context[2] || context[1], fromBuild: false });
        break;
      }
      case 'VOLUME':
        stage.volume = rest;
        break;
      case 'USER':
        stage.user = rest;
        break;
      case 'HEALTHCHECK':
        stage.healthcheck = JSON.parse(/CMD\s+(\[.*\])$/.exec(rest)![1]);
        break;
      case 'CMD':
        stage.cmd = JSON.parse(rest);
        break;
    }
  }
  return stage;
}

const image = finalStage(path.join(ROOT, 'docker', 'Dockerfile'));
const cudaImage = finalStage(path.join(ROOT, 'docker', 'Dockerfile.cuda'));

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Every path under `dir`, relative. */
function listing(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

describe('the Dockerfiles', () => {
  test('the image runs as a non-root user and writes only to its volume, which CACHE_DIR names', () => {
    assert.ok(image.user && !/^(root|0)$/.test(image.user), `USER ${image.user}`);
    assert.ok(image.volume, 'a VOLUME for the cache');
    assert.equal(image.env.CACHE_DIR, image.volume);
    assert.equal(image.workdir, '/app');
    assert.deepEqual(image.cmd, ['node', 'dist/src/main.js']);
    assert.ok(image.healthcheck?.join(' ').includes('/healthz'), 'HEALTHCHECK on /healthz');
  });

  test('the CUDA image runs the same way, on the cuda backend, as a non-root user', () => {
    assert.deepEqual(cudaImage.env, { ...image.env, CONVSCOPE_BACKEND: 'cuda' });
    for (const key of ['workdir', 'volume', 'healthcheck', 'cmd'] as const) assert.deepEqual(cudaImage[key], image[key], key);
    assert.ok(cudaImage.user && !/^(root|0)$/.test(cudaImage.user), `USER ${cudaImage.user}`);
  });

  test('.dockerignore keeps dependencies, caches, builds and git out of the build context', () => {
    const ignored = fs
      .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['node_modules', '.cache', 'dist', '.git']) assert.ok(ignored.includes(entry), entry);
  });
});

const nobody = {
  uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })),
  gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })),
};

describe('the image starts as its non-root user with root-owned files', () => {
  let app: string;
  let volume: string;
  let port: number;
  let server: ChildProcess | undefined;
  let output = '';
  let appFiles: string[];

  /** The image's environment, its paths moved to the staged app and volume. */
  function environment(overrides: Record<string, string | undefined> = {}): Record<string, string> {
    const env: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: '/nonexistent', ...image.env, PORT: String(port), ...overrides };
    for (const [key, value] of Object.entries(env)) {
      if (value === undefined) delete env[key];
      else
        env[key] = value.startsWith(image.volume!)
          ? volume + value.slice(image.volume!.length)
          : value.startsWith(image.workdir)
            ? app + value.slice(image.workdir.length)
            : value;
    }
    return env as Record<string, string>;
  }

  /** Runs `command` in the app as nobody, with `env`. */
  function asNobody(command: string[], env: Record<string, string>): ChildProcess {
    return spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', ...command], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  beforeAll(() => {
    assert.equal(process.getuid?.(), 0, 'this test switches to the user nobody: run it as root (as CI does)');
    app = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-image-app-'));
    fs.chmodSync(app, 0o755);
    for (const copy of image.copies) {
      const source = path.join(ROOT, copy.from);
      const target = path.join(app, copy.to);
      if (copy.from === 'node_modules') {
        // The build stage's node_modules after docker/production.sh: hard links to this
        // checkout's (no copy of a gigabyte), the files npm rewrites copied for real.
        execFileSync('cp', ['-al', fs.realpathSync(source), target]);
        const hidden = path.join(target, '.package-lock.json'); // npm rewrites it in place
        fs.rmSync(hidden);
        fs.copyFileSync(path.join(source, '.package-lock.json'), hidden);
        fs.copyFileSync(path.join(ROOT, 'package-lock.json'), path.join(app, 'package-lock.json'));
        execFileSync('sh', [path.join(ROOT, 'docker', 'production.sh')], { cwd: app, stdio: 'ignore' });
        fs.rmSync(path.join(app, 'package-lock.json'));
      } else {
        assert.ok(fs.existsSync(source), `${copy.from} exists (npm run build first)`);
        fs.cpSync(source, target, { recursive: true });
      }
    }
    volume = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-image-volume-'));
    fs.chownSync(volume, nobody.uid, nobody.gid);
    appFiles = listing(app);
  });

  afterAll(() => {
    server?.kill('SIGKILL');
    for (const dir of [app, volume]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('without the image’s CACHE_DIR it fails as reported, saying what to change', async () => {
    port = await freePort();
    const child = asNobody(image.cmd!, environment({ CACHE_DIR: undefined }));
    let log = '';
    child.stdout!.on('data', (d) => (log += d));
    child.stderr!.on('data', (d) => (log += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 1, log);
    assert.match(log, /EACCES: permission denied, mkdir '[^']*\/\.cache/);
    assert.match(log, /CACHE_DIR \([^)]*\) must be a folder this user \(uid \d+\) can write/);
  });

  test('with it, the server starts, serves, passes its HEALTHCHECK and writes only to the volume', async () => {
    port = await freePort();
    const env = environment();
    server = asNobody(image.cmd!, env);
    server.stdout!.on('data', (d) => (output += d));
    server.stderr!.on('data', (d) => (output += d));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    let health: Response | undefined;
    while (!health?.ok) {
      assert.equal(server.exitCode, null, `the server exited: ${output}`);
      assert.ok(Date.now() < deadline, `no /healthz within 60 s: ${output}`);
      health = await fetch(`${url}/healthz`).catch(() => undefined);
      if (!health?.ok) await new Promise((r) => setTimeout(r, 250));
    }
    const body = (await health.json()) as { ok: boolean; models: number; modelErrors: number };
    assert.equal(body.ok, true);
    assert.ok(body.models > 0 && body.modelErrors === 0, JSON.stringify(body));

    const healthcheck = asNobody(image.healthcheck!, env);
    assert.equal(await new Promise((resolve) => healthcheck.on('exit', resolve)), 0, 'the image’s HEALTHCHECK command');

    const r = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ backend { name } models(first: 5) { edges { node { name } } } }' }),
    });
    const answer = (await r.json()) as { data: { backend: { name: string }; models: { edges: { node: { name: string } }[] } }; errors?: unknown };
    assert.equal(answer.errors, undefined);
    assert.equal(answer.data.backend.name, 'cpu');
    assert.ok(answer.data.models.edges.length > 0);

    server.kill('SIGTERM');
    assert.equal(await new Promise((resolve) => server!.on('exit', resolve)), 0, 'a clean stop on SIGTERM');
    server = undefined;
    assert.deepEqual(listing(app), appFiles, 'nothing written under the app folder');
    const written = listing(volume);
    assert.ok(written.includes('index.sqlite'), `the volume holds the cache: ${written.join(', ')}`);
    assert.equal(fs.statSync(path.join(volume, 'index.sqlite')).uid, nobody.uid);
  });
});
