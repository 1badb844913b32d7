// The chat page of `hylo serve` in headless Chromium (Debian's chromium, driven by puppeteer-core):
// streamed answers, the stop button cancelling on the server, reasoning folded, tool calls, model
// output that tries to inject HTML, conversations surviving a reload, a screenshot that is not
// blank; then a server with --api-key (the key prompt) and a prompt over the context.
// Usage: node browser_test.mjs HYLO_BINARY FIXTURE_TOOL. Exit 77 (skipped) without chromium.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { loadPackage, startServer } from '../server/clients/harness.mjs';
import { decodePng, inkStats } from './png.mjs';

const CHROMIUM = process.env.HYLO_CHROMIUM || '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) {
  console.error(`skipped: ${CHROMIUM} is not installed (Debian package chromium; scripts/setup.sh installs it)`);
  process.exit(77);
}
const puppeteer = loadPackage('puppeteer-core');

const KEY = 'sk-browser-test';
let browser;
let profile;
let plain;   // a server without a key, with --test-hooks for forced outputs
let keyed;   // a server with --api-key and a small context
let gateway; // a router without a model of its own, sending everything to `plain`
const pageErrors = [];

before(async () => {
  [plain, keyed] = await Promise.all([
    startServer(['--parallel', '1', '-c', '100000', '--test-hooks']),
    startServer(['--parallel', '1', '-c', '256', '--api-key', KEY]),
  ]);
  gateway = await startServer(['--upstream', `cloud=${plain.url}/v1,ctx=100000`], { withModel: false });
  profile = mkdtempSync(join(tmpdir(), 'hylo-chromium-'));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--disable-quic', '--disable-default-apps', '--no-proxy-server'],
  });
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  const codes = await Promise.all([gateway?.stop(), plain?.stop(), keyed?.stop()]);
  assert.deepEqual(codes, [0, 0, 0], `${gateway?.log()}\n${plain?.log()}\n${keyed?.log()}`);
});

async function openPage(url) {
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  await page.setViewport({ width: 1100, height: 760 });
  // Script errors and Content-Security-Policy violations both end up here.
  page.on('pageerror', (e) => pageErrors.push(`${url}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) pageErrors.push(`${url}: ${m.text()}`);
  });
  const res = await page.goto(url, { waitUntil: 'load' });
  assert.equal(res.status(), 200);
  await page.waitForFunction(() => document.querySelectorAll('#model-picker option').length > 0);
  return page;
}

async function setSettings(page, values) {
  await page.click('#show-settings');
  for (const [k, v] of Object.entries(values)) {
    await page.$eval(`#set-${k}`, (e, v) => { e.value = v; }, v);
  }
  await page.click('#save-settings');
  assert.equal(await page.$eval('#settings-result', (e) => e.textContent), 'Saved.');
  await page.click('#show-chat');
}

async function sendMessage(page, text) {
  const before = await page.$$eval('.msg.assistant', (l) => l.length);
  await page.$eval('#input', (e, t) => { e.value = t; }, text);
  await page.focus('#input');
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => document.querySelectorAll('.msg.assistant').length > n, {}, before);
}

function lastAssistant(page) {
  return page.$$eval('.msg.assistant', (l) => {
    const m = l[l.length - 1];
    return {
      state: m.dataset.state,
      chunks: Number(m.dataset.chunks),
      text: m.querySelector('.content').textContent,
      stats: [...m.querySelectorAll('.stats')].map((s) => s.textContent).join(' | '),
      error: m.querySelector('.error')?.textContent ?? '',
    };
  });
}

async function waitDone(page) {
  await page.waitForFunction(() => {
    const l = document.querySelectorAll('.msg.assistant');
    return l.length && l[l.length - 1].dataset.state !== 'streaming';
  });
  return lastAssistant(page);
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

test('the page and its files come with their types, a strict CSP and validators', async () => {
  const page = await fetch(`${plain.url}/`, { headers: { Accept: 'text/html' } });
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.match(page.headers.get('content-security-policy'), /script-src 'self'/);
  assert.doesNotMatch(page.headers.get('content-security-policy'), /unsafe-inline/);
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  assert.doesNotMatch(await page.text(), /<script>/);  // no inline script: app.js is its own file
  const js = await fetch(`${plain.url}/web/app.js`);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  const etag = js.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{20}"$/);
  assert.equal((await fetch(`${plain.url}/web/app.js`, { headers: { 'If-None-Match': etag } })).status, 304);
  // API clients that probe `/` still get the line of text.
  assert.match(await (await fetch(`${plain.url}/`)).text(), /hylo is running/);
  // The page's files need no key (the page asks for it); the API still does.
  assert.equal((await fetch(`${keyed.url}/web/app.css`)).status, 200);
  assert.equal((await fetch(`${keyed.url}/props`)).status, 401);
});

test('chat: streamed answer, stop, reasoning, tool calls, safe Markdown, reload, screenshot', async () => {
  const page = await openPage(`${plain.url}/`);
  const models = await page.$$eval('#model-picker option', (l) => l.map((o) => o.value));
  assert.deepEqual(models, ['qwen3moe-tiny.gguf']);

  // A streamed answer: several chunks, then the server's usage and timings.
  await setSettings(page, { temperature: '0', max_tokens: '24' });
  await sendMessage(page, 'Hello from the browser');
  const first = await waitDone(page);
  assert.equal(first.state, 'done', first.error);
  assert.ok(first.chunks > 1, `streamed in ${first.chunks} chunks`);
  assert.ok(first.text.length > 0);
  assert.match(first.stats, /24 tokens · [\d.]+ tok\/s/);
  assert.match(first.stats, /context \d+ \/ 100000/);

  // Stop: tokens keep arriving until the button is pressed; the server then cancels the request.
  await setSettings(page, { max_tokens: '' });
  const gone = await metric(plain.url, 'hylo_client_disconnects_total');
  await sendMessage(page, 'Now talk for a long time');
  const grown = (n) => {
    const l = document.querySelectorAll('.msg.assistant');
    const m = l[l.length - 1];
    return m.dataset.state === 'streaming' && m.querySelector('.content').textContent.length > n;
  };
  await page.waitForFunction(grown, {}, 0);
  const shown = await page.$$eval('.msg.assistant .content', (l) => l[l.length - 1].textContent.length);
  await page.waitForFunction(grown, {}, shown);  // more text arrived while streaming
  await page.click('#stop');
  const stopped = await waitDone(page);
  assert.equal(stopped.state, 'stopped');
  assert.equal(await page.$eval('#send', (e) => e.hidden), false);
  let running = NaN;
  for (let i = 0; i < 400 && running !== 0; i++) {
    running = await metric(plain.url, 'hylo_requests_running');
    if (running !== 0) await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(running, 0, 'the server is still generating after the stop');
  assert.equal(await metric(plain.url, 'hylo_client_disconnects_total'), gone + 1);

  // Reasoning (folded), Markdown, and model output that tries to become HTML.
  const hostile = '<think>\nfirst I plan\n</think>\n\n# Title\nHello **bold** and `x<y>` ' +
    '<img src=x onerror="window.pwned=1"> [ok](https://example.org) [bad](javascript:alert(1))\n\n' +
    '```js\nlet a = "<b>";\n```\n\n- one\n- two\n';
  await setSettings(page, { max_tokens: '200', extra: JSON.stringify({ test_forced_output: hostile }) });
  await sendMessage(page, 'Render this');
  const md = await waitDone(page);
  assert.equal(md.state, 'done', md.error);
  const shape = await page.$$eval('.msg.assistant', (l) => {
    const m = l[l.length - 1];
    const d = m.querySelector('details.reasoning');
    return {
      reasoning: d?.textContent, open: d?.open, h1: m.querySelector('.content h1')?.textContent,
      strong: m.querySelector('.content strong')?.textContent, code: m.querySelector('.content pre code')?.textContent,
      items: m.querySelectorAll('.content li').length, links: [...m.querySelectorAll('a')].map((a) => a.href),
      images: document.querySelectorAll('#messages img').length, pwned: window.pwned,
    };
  });
  assert.match(shape.reasoning, /first I plan/);
  assert.equal(shape.open, false);
  assert.equal(shape.h1, 'Title');
  assert.equal(shape.strong, 'bold');
  assert.equal(shape.code, 'let a = "<b>";');
  assert.equal(shape.items, 2);
  assert.deepEqual(shape.links, ['https://example.org/']);
  assert.equal(shape.images, 0);
  assert.equal(shape.pwned, undefined);
  assert.match(md.text, /<img src=x onerror/);  // shown as text

  // A tool call, shown with its arguments.
  const tool = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object',
    properties: { city: { type: 'string' } } } } };
  await setSettings(page, { extra: JSON.stringify({ tools: [tool],
    test_forced_output: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>' }) });
  await sendMessage(page, 'Weather?');
  const called = await waitDone(page);
  assert.equal(called.state, 'done', called.error);
  const call = await page.$$eval('.msg.assistant', (l) => l[l.length - 1].querySelector('.tool-call')?.textContent);
  assert.match(call, /get_weather/);
  assert.match(call, /"city": "Paris"/);
  await setSettings(page, { extra: '' });

  // Reload: the conversation is still there, the stopped answer marked as such.
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('.msg.assistant');
  const titles = await page.$$eval('#conversations .conv-title', (l) => l.map((b) => b.textContent));
  assert.deepEqual(titles, ['Hello from the browser']);
  const after = await page.$$eval('.msg', (l) => l.map((m) => `${m.classList[1]}:${m.dataset.state}`));
  assert.deepEqual(after, ['user:done', 'assistant:done', 'user:done', 'assistant:stopped', 'user:done',
    'assistant:done', 'user:done', 'assistant:done']);

  // A second conversation, then back to the first.
  await page.click('#new-chat');
  assert.equal(await page.$$eval('.msg', (l) => l.length), 0);
  await page.click('#conversations li:last-child .conv-title');
  assert.equal(await page.$$eval('.msg', (l) => l.length), 8);

  const png = await page.screenshot({ type: 'png' });
  if (process.env.HYLO_SCREENSHOT) writeFileSync(process.env.HYLO_SCREENSHOT, png);  // to look at
  const shot = inkStats(decodePng(png));
  assert.ok(shot.colors > 50, `the screenshot has ${shot.colors} colours`);
  assert.ok(shot.inkFraction > 0.03, `only ${(100 * shot.inkFraction).toFixed(2)}% of the screenshot is drawn`);
  await page.close();
});

test('a server with --api-key: the page asks for the key, keeps it, and shows a context overflow', async () => {
  const page = await openPage(`${keyed.url}/`);
  await setSettings(page, { max_tokens: '8' });
  await sendMessage(page, 'Hello with a key');
  await page.waitForSelector('#key-dialog[open]');
  assert.match(await page.$eval('#key-reason', (e) => e.textContent), /API key/);
  await page.type('#key-input', KEY);
  await page.click('#key-ok');
  const answer = await waitDone(page);
  assert.equal(answer.state, 'done', answer.error);
  assert.match(answer.stats, /8 tokens/);
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('hylo.apiKey'))), KEY);

  await sendMessage(page, 'word '.repeat(400));
  const overflow = await waitDone(page);
  assert.equal(overflow.state, 'error');
  assert.match(overflow.error, /the prompt is \d+ tokens, the context holds 256/);

  // The status page reads /props with the key.
  await page.click('#show-status');
  await page.waitForFunction(() => /context per slot/.test(document.querySelector('#status-body').textContent));
  const status = await page.$eval('#status-body', (e) => e.textContent);
  assert.match(status, /context per slot256/);
  assert.match(status, /qwen3moe-tiny\.gguf/);
  assert.match(status, /requests running/);
  assert.match(status, /prefix cache(off|[\d.]+ \w?i?B of [\d.]+ \w?i?B in RAM)/);
  // The doctor's verdict and findings for this server (GET /doctor, with the key).
  assert.match(status, /Doctor \(\/doctor\)/);
  assert.match(status, /No problems|configuration problem|hardware is the problem/);
  assert.match(status, /bandwidth-unknown|no findings|warning|info/);
  await page.close();
  assert.deepEqual(pageErrors, []);
});

test('through the router: the page lists the upstream model and streams its answer', async () => {
  const page = await openPage(`${gateway.url}/`);
  const listed = (await (await fetch(`${gateway.url}/v1/models`)).json()).data.map((m) => m.id);
  await page.waitForFunction((n) => document.querySelectorAll('#model-picker option').length >= n, {}, listed.length);
  const options = await page.$$eval('#model-picker option', (l) => l.map((o) => o.value));
  assert.ok(listed.length > 0 && listed.every((id) => options.includes(id)), `${options} vs ${listed}`);
  await setSettings(page, { max_tokens: '6' });
  await sendMessage(page, 'Hello through the router');
  const answer = await waitDone(page);
  assert.equal(answer.state, 'done', answer.error);
  assert.match(answer.stats, /6 tokens/);
  assert.ok(answer.text.length > 0);
  assert.match(gateway.log(), /cloud/);  // the gateway says where the request went
  await page.close();
  assert.deepEqual(pageErrors, []);
});
