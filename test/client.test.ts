/**
 * The typed client (src/web/client/client.ts) stays in sync with the API: each of its operations
 * is valid against schema.graphql, and each method sends one of them.
 */
import { test } from '@jest/globals';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, parse, validate } from 'graphql';
import { ConvscopeClient, OPERATIONS } from '../src/web/client/client';
import { ROOT } from './helpers';

test('every operation of the typed client is valid against schema.graphql', () => {
  const schema = buildSchema(fs.readFileSync(path.join(ROOT, 'schema.graphql'), 'utf8'));
  for (const [name, operation] of Object.entries(OPERATIONS)) {
    const errors = validate(schema, parse(operation));
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
      `client operation ${name}`,
    );
  }
});

test('each method of the client sends its own operation', async () => {
  const sent: string[] = [];
  const client = new ConvscopeClient({ server: 'http://convscope.invalid' });
  client.request = async (query: string) => {
    sent.push(query);
    throw new Error('not sent');
  };
  const calls: Record<keyof typeof OPERATIONS, () => Promise<unknown>> = {
    models: () => client.models(),
    layers: () => client.layers('m'),
    filterGrid: () => client.filterGrid('m', 'l'),
    projection: () => client.projection({ model: 'm', layer: 'l', filter: 0, image: 'i' }),
    topActivations: () => client.topActivations({ model: 'm', layer: 'l', filter: 0, dataset: 'd' }),
    occlusion: () => client.occlusion({ model: 'm', image: 'i' }),
    uploadImage: () => client.uploadImage('eA=='),
    buildIndex: () => client.buildIndex('m', 'd'),
    job: () => client.job('j'),
  };
  for (const [name, call] of Object.entries(calls)) {
    await assert.rejects(call);
    assert.equal(sent.at(-1), OPERATIONS[name as keyof typeof OPERATIONS], name);
  }
});
