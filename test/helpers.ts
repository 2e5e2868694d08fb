/** Shared test utilities: a real server on a free port, and a GraphQL client. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { RunningServer, startServer } from '../src/server';

import { FIXTURE_MODELS, FIXTURES, ROOT } from './paths';

export { FIXTURE_MODELS, FIXTURES, ROOT };

export interface GqlResult<T = any> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: { code?: string; [k: string]: unknown } }[];
}

/** A server on 127.0.0.1 with a fresh cache folder; env entries override the defaults. */
export async function startTestServer(env: Record<string, string> = {}): Promise<RunningServer & { cacheDir: string }> {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-test-'));
  const config = loadConfig({ MODELS_DIR: FIXTURE_MODELS, CACHE_DIR: cacheDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', ...env });
  const server = await startServer(config);
  return {
    ...server,
    cacheDir,
    async close() {
      await server.close();
      fs.rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

export async function gql<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<GqlResult<T>> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as GqlResult<T>;
  return { ...body, status: res.status };
}

/** The `extensions.code` of the first error, failing loudly if there is none. */
export function errorCode(result: GqlResult): string | undefined {
  return result.errors?.[0]?.extensions?.code;
}
