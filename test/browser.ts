/** What the browser tests share: Debian's Chromium, offline, and checks of a bundled page. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import express, { Router } from 'express';
import { Browser, BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Chromium with one context in which every request that is not to `serverUrl` or `otherUrls`
 * (http or ws) is refused and remembered in `blocked`; data: and blob: URLs never leave the page.
 */
export async function offlineBrowser(
  serverUrl: string,
  viewport = { width: 1400, height: 900 },
  otherUrls: string[] = [],
): Promise<{ browser: Browser; context: BrowserContext; blocked: string[] }> {
  assert.ok(
    fs.existsSync(CHROMIUM),
    `Chromium not found at ${CHROMIUM}: install Debian's package (apt-get install -y --no-install-recommends chromium, as .ci/run does)`,
  );
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport });
  const origins = [serverUrl, ...otherUrls].map((u) => new URL(u).origin);
  const allowed = [...origins, ...origins.map((o) => o.replace(/^http/, 'ws'))].map((o) => `${o}/`);
  const blocked: string[] = [];
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (allowed.some((prefix) => url.startsWith(prefix)) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
  return { browser, context, blocked };
}

/**
 * The HTML at `pageUrl` loads a script and a stylesheet from under `assets`, nothing from another
 * host; both are served with a year's immutable caching, and unknown files and the manifest are 404.
 */
export async function assertBundledPage(serverUrl: string, pageUrl: string, assets: string): Promise<void> {
  const res = await fetch(`${serverUrl}${pageUrl}`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  const html = await res.text();
  const js = html.match(new RegExp(`<script type="module" src="(${assets}/[^"]+\\.js)"`))?.[1];
  const css = html.match(new RegExp(`<link rel="stylesheet" href="(${assets}/[^"]+\\.css)"`))?.[1];
  assert.ok(js && css, `page names its script and stylesheet:\n${html}`);
  assert.doesNotMatch(html, /https?:\/\//, 'the page loads nothing from another host');
  for (const asset of [js, css]) {
    const r = await fetch(`${serverUrl}${asset}`);
    assert.equal(r.status, 200, asset);
    assert.match(r.headers.get('cache-control') ?? '', /max-age=31536000.*immutable/);
    await r.arrayBuffer();
  }
  assert.equal((await fetch(`${serverUrl}${assets}/no-such-file.js`)).status, 404);
  assert.equal((await fetch(`${serverUrl}${assets}/manifest.json`)).status, 404);
}

/** Status and text of `pageUrl` from `routes` alone (e.g. routes over a folder with no bundle). */
export async function fetchFrom(routes: Router, pageUrl: string): Promise<{ status: number; text: string }> {
  const app = express();
  app.use(routes);
  const httpServer = http.createServer(app);
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = httpServer.address() as AddressInfo;
    const res = await fetch(`http://127.0.0.1:${port}${pageUrl}`, { headers: { accept: 'text/html' } });
    return { status: res.status, text: await res.text() };
  } finally {
    await new Promise((resolve) => httpServer.close(resolve));
  }
}

/** A page of another origin: `html` (which may be changed) at / of a free loopback port. */
export async function pageServer(html: string): Promise<{ url: string; html: string; close(): Promise<void> }> {
  const page = { url: '', html, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page.html));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  page.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return page;
}
