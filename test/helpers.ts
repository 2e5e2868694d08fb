/** Shared test utilities: a real server on a free port, and a GraphQL client. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { createClient } from 'graphql-ws';
import sharp from 'sharp';
import WebSocket from 'ws';
import { compileChannelMaxima } from '../src/compiler/forward';
import { loadConfig } from '../src/config';
import { Services } from '../src/service/services';
import { modelPixels, preprocess } from '../src/images/preprocess';
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

/** A folder of PNGs: `count` patterned images, with image 2's bytes repeated as 9 and 14 (ties). */
export async function makeDataset(dir: string, count: number, width: number, height: number): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const names: string[] = [];
  const labels: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const source = i === 9 || i === 14 ? 2 : i;
    const raw = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          raw[(y * width + x) * 3 + c] = Math.round(127.5 + 127 * Math.sin((x * (1 + (source % 5)) + y * (source % 3) + c * source) / (3 + (source % 7))));
        }
      }
    }
    const name = `img-${String(i).padStart(3, '0')}.png`;
    fs.writeFileSync(
      path.join(dir, name),
      await sharp(raw, { raw: { width, height, channels: 3 } })
        .png()
        .toBuffer(),
    );
    names.push(name);
    labels[name] = `class ${i % 3}`;
  }
  fs.writeFileSync(path.join(dir, 'labels.json'), JSON.stringify(labels));
  return names;
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

/**
 * Asserts that a graph fed 8-bit pixels (index jobs: compileChannelMaxima with preprocessing)
 * normalises them to exactly the float32s of preprocess(), for each channel order the model's
 * input allows, on the maxima of the input itself (each channel's largest value, and where).
 */
export async function assertPixelGraphsMatch(services: Services, modelName: string, image: (channels: 1 | 3) => Promise<Buffer>): Promise<void> {
  const { engine, config, registry } = services;
  const model = registry.models.get(modelName)!;
  const orders = model.preprocessing.channels === 'GRAY' ? (['GRAY'] as const) : (['RGB', 'BGR'] as const);
  for (const channels of orders) {
    const p = { ...model.preprocessing, channels };
    const bytes = await image(channels === 'GRAY' ? 1 : 3);
    const tensors = [model.graph.inputName];
    const fromFloats = await engine.forward(model, `test-floats/${channels}`, () => compileChannelMaxima(model.graph, model.shapes, tensors), {
      key: 'img',
      data: await preprocess(bytes, p, config),
    });
    const fromPixels = await engine.forwardPixels(model, `test-pixels/${channels}`, () => compileChannelMaxima(model.graph, model.shapes, tensors, p), {
      key: 'img',
      pixels: await modelPixels(bytes, p, config),
    });
    assert.equal(fromFloats[0].length, channels === 'GRAY' ? 1 : 3);
    assert.deepEqual(fromPixels, fromFloats, `${modelName} ${channels}`);
  }
}

/** A GraphQL-over-WebSocket connection to a test server, open when it returns: a subscription made on it starts at once. */
export async function openSubscriptions(url: string) {
  const client = createClient({ url: `${url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, lazy: false });
  await new Promise<void>((resolve, reject) => {
    client.on('connected', () => resolve());
    client.on('error', reject);
  });
  return {
    /** Every event's data until the server ends the subscription; `error`: how it failed (or that it did not end in time). */
    until<T>(
      query: string,
      variables: Record<string, unknown>,
      onData: (data: T) => void = () => undefined,
      timeoutMs = 120_000,
    ): Promise<{ events: T[]; error: unknown }> {
      const events: T[] = [];
      return new Promise((resolve) => {
        const end = (error: unknown) => (clearTimeout(timer), resolve({ events, error }));
        const timer = setTimeout(() => end(new Error(`no end after ${timeoutMs} ms: ${JSON.stringify(events.at(-1))}`)), timeoutMs);
        client.subscribe<T>(
          { query, variables },
          {
            next: ({ data }) => (events.push(data as T), onData(data as T)),
            error: end,
            complete: () => end(undefined),
          },
        );
      });
    },
    close: () => client.dispose(),
  };
}

/** One subscription's events until the server ends it, over a connection of its own. */
export async function subscriptionEvents<T>(url: string, query: string, variables: Record<string, unknown>, onData?: (data: T) => void, timeoutMs?: number) {
  const subscriptions = await openSubscriptions(url);
  try {
    return await subscriptions.until<T>(query, variables, onData, timeoutMs);
  } finally {
    await subscriptions.close();
  }
}

/** A job's `jobProgress` updates (`fields` of each) until it ends; throws if the subscription fails or does not end in time. */
export async function jobUpdates<T>(
  url: string,
  id: string,
  fields: string,
  onUpdate: (update: T) => void = () => undefined,
  timeoutMs = 120_000,
): Promise<T[]> {
  const query = `subscription($id: ID!) { jobProgress(id: $id) { ${fields} } }`;
  const { events, error } = await subscriptionEvents<{ jobProgress: T }>(url, query, { id }, (d) => onUpdate(d.jobProgress), timeoutMs);
  if (error) throw error instanceof Error ? error : new Error(`jobProgress failed: ${JSON.stringify(error)}`);
  return events.map((e) => e.jobProgress);
}
