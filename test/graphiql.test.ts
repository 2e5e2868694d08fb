/**
 * The offline GraphiQL page: HTTP routing at /graphql, and a real (Debian) Chromium that loads the
 * page with every request off this machine blocked, types a query and reads the result.
 */
import { afterAll, beforeAll, test } from '@jest/globals';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Browser, Page } from 'playwright-core';
import { graphiqlRoutes, GRAPHIQL_DIR } from '../src/http/graphiql';
import { assertBundledPage, fetchFrom, offlineBrowser } from './browser';
import { gql, startTestServer } from './helpers';

let server: Awaited<ReturnType<typeof startTestServer>>;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.close();
});

test('GET /graphql from a browser is the GraphiQL page, with hashed, long-cached assets', async () => {
  assert.ok(fs.existsSync(path.join(GRAPHIQL_DIR, 'manifest.json')), `no GraphiQL bundle in ${GRAPHIQL_DIR}: run npm run build`);
  await assertBundledPage(server.url, '/graphql', '/graphiql');
});

test('other requests to /graphql fall through to Apollo', async () => {
  // POST, whatever the Accept header.
  const post = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/html, application/json' },
    body: JSON.stringify({ query: '{ __typename }' }),
  });
  assert.equal(post.status, 200);
  assert.deepEqual(await post.json(), { data: { __typename: 'Query' } });
  // GET with a query, even from a browser-like Accept.
  const get = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, {
    headers: { accept: 'application/json, text/html', 'apollo-require-preflight': 'true' },
  });
  assert.equal(get.status, 200);
  assert.deepEqual(await get.json(), { data: { __typename: 'Query' } });
  // GET without text/html in Accept: Apollo's own answer (no page).
  const api = await fetch(`${server.url}/graphql`, { headers: { accept: 'application/json' } });
  assert.match(api.headers.get('content-type') ?? '', /json/);
  await api.arrayBuffer();
});

test('without a built bundle the page says how to build it', async () => {
  const { status, text } = await fetchFrom(graphiqlRoutes(fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-no-graphiql-'))), '/graphql');
  assert.equal(status, 503);
  assert.match(text, /npm run build/);
  assert.match(text, /scripts\/build-web\.mjs/);
});

test('GraphiQL in Chromium runs a typed query, offline', async () => {
  const expected = await gql(server.url, '{ models { totalCount nodes { name } } }');
  assert.equal(expected.errors, undefined);
  const totalCount: number = expected.data.models.totalCount;
  assert.ok(
    expected.data.models.nodes.some((m: { name: string }) => m.name === 'alexnet'),
    'fixtures include alexnet',
  );

  let blocked: string[] = [];
  const pageErrors: string[] = [];
  const consoleProblems: string[] = [];
  const workers: string[] = [];
  let browser: Browser | undefined;
  let page: Page | undefined;
  try {
    const offline = await offlineBrowser(server.url);
    ({ browser, blocked } = offline);
    page = await offline.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error' || /web worker/i.test(msg.text())) consoleProblems.push(`${msg.type()}: ${msg.text()}`);
    });
    page.on('worker', (worker) => workers.push(worker.url()));

    await page.goto(`${server.url}/graphql`, { waitUntil: 'load' });
    const queryEditor = page.locator('.graphiql-query-editor .monaco-editor');
    await queryEditor.waitFor({ state: 'visible', timeout: 30_000 });
    // The default query is there: the editor is ready for input.
    await page.locator('.graphiql-query-editor .view-lines', { hasText: 'ModelsAndLayers' }).waitFor({ timeout: 30_000 });

    await page.locator('.graphiql-query-editor .view-lines').click();
    await page.keyboard.press('ControlOrMeta+KeyA');
    await page.keyboard.press('Delete');
    // Monaco closes brackets as they are typed and then types over its own closing ones.
    await page.keyboard.type('{ models { totalCount nodes { name } } }', { delay: 5 });
    await page.keyboard.press('Escape'); // close any completion list
    const typed = (await page.locator('.graphiql-query-editor .view-lines').innerText()).replace(/\s+/g, ' ').trim();
    assert.equal(typed, '{ models { totalCount nodes { name } } }', 'the query editor holds what was typed');

    // GraphiQL re-reads the operation 100 ms after an edit (debounced); run before that and it
    // sends the default query's operationName with the new query, which the server rejects. The
    // tab's title changing from that name to "<untitled>" shows that it has caught up.
    await page.locator('.graphiql-tab-active', { hasText: '<untitled>' }).waitFor({ timeout: 10_000 });
    await page.locator('.graphiql-execute-button').click();
    const response = page.locator('.graphiql-response .view-lines');
    await response.filter({ hasText: 'alexnet' }).waitFor({ timeout: 30_000 });
    const text = (await response.innerText()).replace(/\u00a0/g, ' ');
    assert.match(text, new RegExp(`"totalCount": ${totalCount}\\b`), text);
    assert.match(text, /"name": "alexnet"/, text);

    assert.deepEqual(blocked, [], 'the page tried to load nothing from another host');
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    assert.deepEqual(consoleProblems, [], 'no console errors, and monaco did not fall back from its web workers');
    assert.ok(
      workers.some((u) => /\/graphiql\/editor\.worker-[^/]+\.js$/.test(u)),
      `monaco's editor worker started: ${workers.join(', ')}`,
    );
    assert.ok(
      workers.some((u) => /\/graphiql\/graphql\.worker-[^/]+\.js$/.test(u)),
      `the GraphQL worker started: ${workers.join(', ')}`,
    );
    assert.ok(
      workers.some((u) => /\/graphiql\/json\.worker-[^/]+\.js$/.test(u)),
      `the JSON worker started: ${workers.join(', ')}`,
    );
  } catch (err) {
    // Say what the page looked like, and whether it had tried to reach another host.
    const shot = path.join(os.tmpdir(), 'convscope-graphiql-failure.png');
    const saved = await page?.screenshot({ path: shot }).then(
      () => true,
      () => false,
    );
    const notes = [
      blocked.length ? `requests to other hosts (blocked): ${blocked.join(', ')}` : '',
      pageErrors.length ? `page errors: ${pageErrors.join(' | ')}` : '',
      consoleProblems.length ? `console: ${consoleProblems.join(' | ')}` : '',
      saved ? `screenshot: ${shot}` : '',
    ].filter(Boolean);
    if (notes.length && err instanceof Error) err.message += `\n${notes.join('\n')}`;
    throw err;
  } finally {
    await browser?.close();
  }
}, 60_000);
