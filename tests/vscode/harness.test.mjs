// The e2e harness waits for the page, not for time: each check here drives harness.mjs against
// a page in headless Chromium that behaves as VS Code's Call Stack view and status bar do —
// frames below the top one arrive late, a stopped thread may be listed collapsed — and a DAP
// trace file that is written to while the wait runs. Run by test_harness.py under Node 24:
//   node --test tests/vscode/harness.test.mjs   (HARNESS_TOOLCHAIN: the toolchain folder)

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { framesSinceLastStop, waitForCallStack, waitForCursor } from './harness.mjs';

const require = createRequire(path.join(process.env.HARNESS_TOOLCHAIN, 'tools', 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');

let browser;
let page;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'distdev-harness-'));

before(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  page = await browser.newPage();
});

after(async () => {
  await browser?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The Call Stack view's markup: a thread row, its frame rows, maybe "Load More Stack Frames". */
const callStack = ({ frames, collapsed = false, loadMore = false }) => `
  <style>.monaco-tl-twistie { display: inline-block; width: 16px; height: 16px; }</style>
  <div class="debug-call-stack">
    <div class="monaco-list-row thread"><div class="monaco-tl-twistie"></div>
      <span class="thread">MainThread</span><span class="state">Paused on step</span></div>
    ${collapsed ? '' : frames.map((f) => `<div class="monaco-list-row"><div class="stack-frame">${f}</div></div>`).join('')}
    ${loadMore ? '<div class="monaco-list-row"><div class="load-all">Load More Stack Frames</div></div>' : ''}
  </div>`;

/** Load a page of this markup, with a script that changes it later as VS Code would. */
async function showPage(html, script = '') {
  await page.setContent(`<html><body>${html}<script>${script}</script></body></html>`);
}

function writeTrace(file, lines) {
  fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
}

const stopped = { direction: 'fromAdapter', message: { type: 'event', event: 'stopped', body: { reason: 'step' } } };
const ask = (seq, startFrame, levels) => ({ direction: 'toAdapter', message: { type: 'request', seq, command: 'stackTrace', arguments: { threadId: 1, startFrame, levels } } });
const told = (seq, names) => ({ direction: 'fromAdapter', message: { type: 'response', request_seq: seq, command: 'stackTrace', success: true, body: { stackFrames: names.map((name) => ({ name })) } } });

test('the frames below the top are awaited on the page and in the trace', async () => {
  const trace = path.join(tmp, 'late.jsonl');
  writeTrace(trace, [stopped, ask(1, 0, 1), told(1, ['charge'])]);
  // The second frame shows 800 ms later, as VS Code's scheduled fetch of the rest does.
  await showPage(callStack({ frames: ['app/billing › charge billing.py'] }), `
    setTimeout(() => document.querySelector('.debug-call-stack').insertAdjacentHTML('beforeend',
      '<div class="monaco-list-row"><div class="stack-frame">app/orders › place orders.py</div></div>'), 800);`);
  const timer = setTimeout(() => fs.appendFileSync(trace, [ask(2, 1, 19), told(2, ['place'])]
    .map((l) => JSON.stringify(l)).join('\n') + '\n'), 1200);
  try {
    const rows = await waitForCallStack(page, { what: 'charge over place', patterns: [/charge/, /place/], traceFile: trace, ms: 10000 });
    assert.equal(rows.length, 2);
    assert.match(rows[1], /place/);
    assert.deepEqual(framesSinceLastStop(JSON.parse(`[${fs.readFileSync(trace, 'utf8').trim().split('\n').join(',')}]`))
      .map((f) => f.name), ['charge', 'place']);
  } finally {
    clearTimeout(timer);
  }
});

test('a wait whose frames never arrive in the trace fails, naming what it waited for', async () => {
  const trace = path.join(tmp, 'never.jsonl');
  writeTrace(trace, [stopped, ask(1, 0, 1), told(1, ['charge'])]);
  await showPage(callStack({ frames: ['app/billing › charge', 'app/orders › place'] }));
  await assert.rejects(
    waitForCallStack(page, { what: 'charge over place', patterns: [/charge/, /place/], traceFile: trace, ms: 1500 }),
    /charge over place: not within 1500 ms/);
});

test('frames told before the last stop do not count for it', async () => {
  const lines = [stopped, ask(1, 0, 20), told(1, ['a', 'b', 'c']), stopped, ask(2, 0, 1), told(2, ['d'])];
  assert.deepEqual(framesSinceLastStop(lines).map((f) => f.name), ['d']);
});

test('"Load More Stack Frames" is clicked when the view has fewer frames than wanted', async () => {
  const trace = path.join(tmp, 'more.jsonl');
  writeTrace(trace, [stopped, ask(1, 0, 1), told(1, ['charge']), ask(2, 1, 19), told(2, ['place'])]);
  await showPage(callStack({ frames: ['app/billing › charge'], loadMore: true }), `
    document.querySelector('.load-all').addEventListener('click', (e) => {
      e.target.closest('.monaco-list-row').outerHTML =
        '<div class="monaco-list-row"><div class="stack-frame">app/orders › place</div></div>';
    });`);
  const rows = await waitForCallStack(page, { what: 'charge over place', patterns: [/charge/, /place/], traceFile: trace, ms: 10000 });
  assert.deepEqual(rows, ['app/billing › charge', 'app/orders › place']);
});

test('a stopped thread listed collapsed is expanded with its twistie', async () => {
  const trace = path.join(tmp, 'collapsed.jsonl');
  writeTrace(trace, [stopped, ask(1, 0, 1), told(1, ['place'])]);
  await showPage(callStack({ frames: [], collapsed: true }), `
    document.querySelector('.monaco-tl-twistie').addEventListener('click', () => {
      document.querySelector('.debug-call-stack').insertAdjacentHTML('beforeend',
        '<div class="monaco-list-row"><div class="stack-frame">app/orders › place orders.py</div></div>');
    });`);
  const rows = await waitForCallStack(page, { what: 'place on top', patterns: [/place/], traceFile: trace, ms: 10000 });
  assert.deepEqual(rows, ['app/orders › place orders.py']);
});

test('the cursor is awaited until the status bar shows the wanted line', async () => {
  await showPage(`
    <div class="editor-group-container active"><div class="tab active" data-resource-name="orders.py"></div></div>
    <div class="statusbar-item">Ln 1, Col 1</div>`, `
    setTimeout(() => { document.querySelector('.tab').setAttribute('data-resource-name', 'billing.py'); }, 300);
    setTimeout(() => { document.querySelector('.statusbar-item').textContent = 'Ln 14, Col 5'; }, 900);`);
  const at = await waitForCursor(page, { what: 'def charge', file: 'billing.py', line: 14, ms: 10000 });
  assert.deepEqual(at, { line: 14, col: 5 });
});
