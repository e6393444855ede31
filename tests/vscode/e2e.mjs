// The distdev extension in a real VS Code: code-server serves the workbench, Debian's chromium
// (driven by playwright-core) shows it, and the test presses keys the way a user does.
//
// Steps: install the .vsix; open the workspace; open orders/orders.py, put a breakpoint on its
// proxy call (`# @orders-call-charge`) with F9; F5 (no launch.json); send the HTTP request that
// reaches that line; the stop must show in the Call Stack view; F11 (Step Into) must put billing's
// `charge` on top of the Call Stack; Shift+F5; F12 on `charge` in `_billing.charge(...)` must open
// billing/billing.py; the Services view must list the tree and open ledger.py on a click;
// "distdev: Build" from the Command Palette must build; a journal must open as its events and
// "Replay to here" must start a replay that stops; with `distdev.python` pointing nowhere, F5
// must say what it tried. A screenshot of each is written to ARTIFACTS.
//
// Run by tests/vscode/test_e2e.py, which prepares the workspace, builds the .vsix, and checks the
// DAP trace and the results this script writes. Node 24 (code-server's engine) runs it.
//
// Arguments come as one JSON object in E2E_ARGS:
//   toolchain, vsix, workspace, artifacts, trace, results, port, home, deadlineMs

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import {
  activeTab, cursorLine, delay, eventsIn, readTrace, until, waitForCallStack,
  waitForCursor,
} from './harness.mjs';

const args = JSON.parse(process.env.E2E_ARGS);
const require = createRequire(path.join(args.toolchain, 'tools', 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');

const CODE_SERVER = path.join(args.toolchain, 'tools', 'node_modules', '.bin', 'code-server');
const started = Date.now();
const results = { steps: {}, screenshots: {}, timings: {} };
const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);
const log = (text) => console.log(`[e2e ${elapsed()} s] ${text}`);

/** The 1-based line of `# @name` in `file`. */
function marker(file, name) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const index = lines.findIndex((line) => new RegExp(`#\\s*@${name}(?![\\w-])`).test(line));
  if (index < 0) throw new Error(`no marker @${name} in ${file}`);
  return { line: index + 1, text: lines[index] };
}

/** DAP messages written so far by the extension's tracker. */
const trace = () => readTrace(args.trace);
const events = (name) => eventsIn(trace(), name);

// -- processes -------------------------------------------------------------------------------

function descendants(pid) {
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch { /* gone */ }
  }
  const found = [];
  const todo = [...(children.get(pid) || [])];
  while (todo.length) {
    const child = todo.pop();
    found.push(child);
    todo.push(...(children.get(child) || []));
  }
  return found;
}

function killTree(pid) {
  // Children first are found while the parent still holds them; then everything at once.
  for (const p of [...descendants(pid), pid]) {
    try { process.kill(p, 'SIGKILL'); } catch { /* already gone */ }
  }
}

function writeSettings(userDataDir) {
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'telemetry.telemetryLevel': 'off',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'update.mode': 'none',
    'security.workspace.trust.enabled': false,
    'workbench.tips.enabled': false,
    'distdev.trace.dapFile': args.trace,
  }, null, 2));
}

function serverArgs(dirs) {
  return ['--config', dirs.config, '--auth', 'none', '--bind-addr', `127.0.0.1:${args.port}`,
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--extensions-dir', dirs.extensions, '--user-data-dir', dirs.userData];
}

// -- page actions ----------------------------------------------------------------------------

/** Quick Open (Ctrl+P) `relative`, until its tab is the active one. */
async function openFile(page, relative) {
  const name = path.basename(relative);
  await until(`open ${relative} with Ctrl+P`, async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+P');
    await page.waitForSelector('.quick-input-widget .quick-input-box input', { state: 'visible', timeout: 3000 });
    await page.keyboard.type(relative);
    // The search refines its list as it goes: Enter only once the focused row is this file.
    await until(`Quick Open offers ${relative}`, () => page.evaluate(([base, folder]) => {
      const row = document.querySelector('.quick-input-list .monaco-list-row.focused')
        || document.querySelector('.quick-input-list .monaco-list-row');
      const text = row ? row.textContent || '' : '';
      return text.includes(base) && (!folder || text.includes(folder));
    }, [name, path.dirname(relative) === '.' ? '' : path.dirname(relative)]), 3000, 100);
    await page.keyboard.press('Enter');
    return until(`${name} active`, async () => (await activeTab(page)) === name, 3000);
  }, 20000, 500);
}

/** Ctrl+G to `line[:col]`, until the status bar shows it. */
async function goTo(page, line, col) {
  await until(`go to ${line}:${col ?? 1}`, async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+G');
    await page.waitForSelector('.quick-input-widget .quick-input-box input', { state: 'visible', timeout: 3000 });
    await page.keyboard.type(col ? `${line}:${col}` : `${line}`);
    await page.keyboard.press('Enter');
    return until('cursor moved', async () => {
      const at = await cursorLine(page);
      return at && at.line === line && (!col || at.col === col);
    }, 2000);
  }, 15000, 300);
}

async function screenshot(page, name) {
  const file = path.join(args.artifacts, `${name}.png`);
  await page.screenshot({ path: file });
  results.screenshots[name] = file;
  log(`screenshot: ${file}`);
}

// -- the scenario ----------------------------------------------------------------------------

async function scenario(page) {
  const ws = args.workspace;
  const orders = path.join(ws, 'orders', 'orders.py');
  const call = marker(orders, 'orders-call-charge');
  const billingFile = path.join(ws, 'billing', 'billing.py');
  const chargeDef = fs.readFileSync(billingFile, 'utf8').split('\n').findIndex((l) => /^def charge\(/.test(l)) + 1;

  await page.goto(`http://127.0.0.1:${args.port}/?folder=${encodeURIComponent(ws)}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 30000 });
  results.timings.workbench = elapsed();
  log('workbench loaded');

  // 1. Breakpoint on the proxy call in the nested service, set with F9.
  await openFile(page, 'orders/orders.py');
  await goTo(page, call.line);
  await page.keyboard.press('F9');
  await until('breakpoint glyph in the margin', () => page.$('.codicon-debug-breakpoint, .codicon-debug-breakpoint-unverified'), 5000);
  log(`breakpoint set at orders.py:${call.line}`);

  // 2. F5 with no launch.json: the extension fills the configuration in from the active file.
  await until('F5 starts a distdev session', async () => {
    if (trace().length) return true;
    await page.keyboard.press('F5');
    return until('DAP traffic', () => trace().length > 0, 12000).catch(() => false);
  }, 30000, 100);
  const serving = await until('the application serves its ingress', () => events('output')
    .map((l) => /serving app on (http:\/\/127\.0\.0\.1:\d+)/.exec(l.message.body.output || ''))
    .find(Boolean), 30000);
  results.timings.serving = elapsed();
  log(`F5: application is up at ${serving[1]}`);
  // Held at the breakpoint; once the session ends it fails or completes, either is fine.
  fetch(`${serving[1]}/place_order`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'ann', item: 'book', quantity: 1 }),
  }).catch(() => {});

  await until('stopped at the breakpoint (DAP trace)', () => events('stopped').length >= 1, 20000);
  const atBreakpoint = await waitForCallStack(page, {
    what: 'the Call Stack view shows orders.place on top', patterns: [/place/], traceFile: args.trace });
  results.steps.breakpoint = { rows: atBreakpoint, line: call.line };
  results.timings.breakpoint = elapsed();
  log(`stopped; call stack: ${JSON.stringify(atBreakpoint)}`);
  await screenshot(page, '1-breakpoint-in-nested-service');

  // 3. Step Into (F11) across the proxy call: billing's charge is the top frame.
  const stopsBefore = events('stopped').length;
  await page.keyboard.press('F11');
  await until('stopped after Step Into (DAP trace)', () => events('stopped').length > stopsBefore, 15000);
  // The callee on top and its caller under it: VS Code asks for frames below the top one
  // lazily, so this waits for both rows on the page and both frames in the DAP trace.
  const afterStep = await waitForCallStack(page, {
    what: 'the Call Stack view shows charge on top of place', patterns: [/charge/, /place/],
    traceFile: args.trace });
  results.steps.stepInto = { rows: afterStep, activeTab: await activeTab(page) };
  results.timings.stepInto = elapsed();
  log(`stepped in; call stack: ${JSON.stringify(afterStep)}`);
  await screenshot(page, '2-step-into-across-proxy');

  await page.keyboard.press('Shift+F5');
  await until('the session ended (DAP trace)', () => events('terminated').length || trace().some(
    (l) => l.message.type === 'response' && l.message.command === 'disconnect'), 15000);

  // 4. F12 on `charge` in `_billing.charge(` opens billing.py at its definition.
  await openFile(page, 'orders/orders.py');
  const col = call.text.indexOf('.charge(') + 2; // 1-based column of the "c" of charge, plus one
  await until('F12 on the proxy call opens billing.py', async () => {
    if ((await activeTab(page)) !== 'orders.py') await openFile(page, 'orders/orders.py');
    await goTo(page, call.line, col);
    await page.keyboard.press('F12');
    return until('billing.py active', async () => (await activeTab(page)) === 'billing.py', 3000)
      .catch(() => false);
  }, 30000, 500);
  const at = await waitForCursor(page, {
    what: `the cursor on billing.py's def charge (line ${chargeDef})`, file: 'billing.py', line: chargeDef,
  }).catch(async () => cursorLine(page)); // recorded as it is: the test names the difference
  results.steps.definition = { activeTab: await activeTab(page), line: at && at.line, expectedLine: chargeDef };
  results.timings.definition = elapsed();
  log(`F12 opened billing.py at line ${at.line}`);
  await screenshot(page, '3-go-to-definition-through-proxy');

  // 5. The Services view lists the tree; clicking a service opens its file.
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+Shift+E');
  const header = page.locator('.pane-header', { hasText: /distdev services/i });
  await until('the Services view is in the Explorer', () => header.count(), 10000);
  if ((await header.first().getAttribute('aria-expanded')) !== 'true') await header.first().click();
  // Room for the tree (the list renders only the rows it can show): fold the folder's pane.
  const folderHeader = page.locator('.pane-header', { hasText: /^\s*shop/i });
  if ((await folderHeader.first().getAttribute('aria-expanded')) === 'true') await folderHeader.first().click();
  const pane = page.locator('.pane', { has: header });
  const labels = await until('the Services view shows the service tree', async () => {
    const rows = await pane.locator('.monaco-list-row').evaluateAll((els) => els.map((e) => e.textContent));
    return ['app', 'catalog', 'billing', 'ledger', 'orders'].every((id) => rows.some((r) => r.trim().startsWith(id))) && rows;
  }, 20000, 500);
  await pane.locator('.monaco-list-row', { hasText: /^ledger/ }).first().click();
  await until('clicking ledger opens ledger.py', async () => (await activeTab(page)) === 'ledger.py', 10000);
  results.steps.services = { rows: labels, activeTab: await activeTab(page) };
  log(`Services view: ${JSON.stringify(labels)}`);
  await screenshot(page, '4-services-view');

  // 6. "distdev: Build" from the Command Palette builds the application of the active file.
  // F5 built into .distdev/build too: remove it, so what is there afterwards is this build's.
  fs.rmSync(path.join(ws, '.distdev', 'build'), { recursive: true, force: true });
  await until('the Command Palette runs distdev: Build', async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    await page.waitForSelector('.quick-input-widget .quick-input-box input', { state: 'visible', timeout: 3000 });
    await page.keyboard.type('distdev: Build');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: /distdev: Build/ }).first().waitFor({ timeout: 3000 });
    await page.keyboard.press('Enter');
    return true;
  }, 15000, 500);
  const built = await until('the build reports success', () => page.evaluate(() =>
    [...document.querySelectorAll('.notification-list-item-message')].map((e) => e.textContent)
      .find((t) => /distdev: (built|the build)/.test(t))), 30000, 300);
  results.steps.build = { message: built };
  log(`Build: ${built}`);
  await screenshot(page, '5-build-command');

  // 7. A journal opens as its list of events; "Replay to here" starts a replay stopping there;
  //    the toolbar's Step Back runs the replay again to the event before.
  await openFile(page, '.distdev/build/services/app/orders/journal.cbor');
  // The second event a replay can stop before, so that Step Back has one to go back to.
  const buttons = await until('the journal page shows its events', async () => {
    for (const frame of page.frames()) {
      const found = frame.locator('button[data-seq]');
      if ((await found.count().catch(() => 0)) >= 2) return found;
    }
    return false;
  }, 20000, 500);
  const [first, second] = [Number(await buttons.nth(0).getAttribute('data-seq')),
    Number(await buttons.nth(1).getAttribute('data-seq'))];
  await screenshot(page, '6-journal-events');
  const stopsBeforeReplay = events('stopped').length;
  await buttons.nth(1).click();
  await until('the replay stopped (DAP trace)', () => events('stopped').length > stopsBeforeReplay, 30000);
  results.steps.journal = { activeTab: await activeTab(page), first, second };
  log('replay from the journal page stopped');
  await screenshot(page, '7-journal-replay-stopped');
  const stopsBeforeBack = events('stopped').length;
  await until('Step Back is clicked in the debug toolbar', async () => {
    const back = page.locator('.debug-toolbar .codicon-debug-step-back').first();
    if (!(await back.count().catch(() => 0))) return false;
    await back.click();
    return true;
  }, 15000, 500);
  await until('the step back stopped (DAP trace)', () => events('stopped').length > stopsBeforeBack, 30000);
  // The debuggee's own output travels apart from the stop: wait for the lines the test reads.
  await until('the replay said where it stopped (DAP trace)', () => {
    const said = events('output').map((l) => l.message.body.output || '').join('');
    return said.includes(`stopped before event ${second} (run 1)`)
      && said.includes(`stopped before event ${first} (run 2)`);
  }, 15000);
  await until('the editor shows where the replay went back to',
    async () => (await activeTab(page)) === `before_event_${first}.py`, 15000);
  await until('the debug toolbar shows the session paused', async () =>
    (await page.locator('.debug-toolbar .codicon-debug-continue').count().catch(() => 0)) > 0,
  15000, 200);
  log('Step Back in the replay stopped');
  await screenshot(page, '7b-journal-step-back');
  await page.keyboard.press('Shift+F5');
  await until('the replay ended (DAP trace)', () => events('terminated').length >= 2, 15000);

  // 8. An interpreter without distdev: F5 says what was tried instead of doing nothing.
  const bogus = path.join(ws, 'no-such-env', 'bin', 'python');
  fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'distdev.python': bogus }));
  await pane.locator('.monaco-list-row', { hasText: /^app/ }).first().click();
  await until('clicking app opens app.py', async () => (await activeTab(page)) === 'app.py', 10000);
  const message = await until('F5 reports the missing interpreter', async () => {
    const shown = await page.evaluate(() => [...document.querySelectorAll(
      '.notification-list-item-message, .dialog-message-text, .dialog-message-detail')]
      .map((e) => e.textContent).find((t) => /no Python interpreter with distdev/.test(t)));
    if (shown) return shown;
    await page.keyboard.press('F5');
    return false;
  }, 20000, 3000);
  results.steps.noInterpreter = { message };
  log(`no interpreter: ${message}`);
  await screenshot(page, '8-no-interpreter');
}

async function main() {
  fs.mkdirSync(args.artifacts, { recursive: true });
  const dirs = {
    config: path.join(args.home, 'code-server.yaml'),
    extensions: path.join(args.home, 'extensions'),
    userData: path.join(args.home, 'user-data'),
  };
  fs.writeFileSync(dirs.config, `bind-addr: 127.0.0.1:${args.port}\nauth: none\ncert: false\n`);
  writeSettings(dirs.userData);

  const install = spawnSync(CODE_SERVER, [...serverArgs(dirs), '--install-extension', args.vsix],
    { encoding: 'utf8', timeout: 60000 });
  if (install.status !== 0 || !/successfully installed/i.test(install.stdout + install.stderr)) {
    throw new Error(`code-server --install-extension failed (${install.status}):\n${install.stdout}\n${install.stderr}`);
  }
  results.installed = { vsix: args.vsix, said: `${install.stdout}${install.stderr}`.trim() };
  results.timings.installed = elapsed();
  log('extension installed');

  const server = spawn(CODE_SERVER, [...serverArgs(dirs), args.workspace], { stdio: ['ignore', 'pipe', 'pipe'] });
  let serverLog = '';
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  results.serverPid = server.pid;
  let browser;
  let page;
  try {
    await until('code-server answers', async () => (await fetch(`http://127.0.0.1:${args.port}/healthz`)).ok, 30000, 250);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await scenario(page);
    results.ok = true;
  } catch (error) {
    results.ok = false;
    results.error = String(error && error.stack || error);
    if (page) {
      await screenshot(page, 'failure').catch(() => {});
      // What the Call Stack view held, to see why a wait failed.
      results.callStack = await page.evaluate(() => [...document.querySelectorAll('.debug-call-stack .monaco-list-row')]
        .map((row) => row.outerHTML.slice(0, 1500))).catch(() => []);
    }
    results.serverLog = serverLog.slice(-4000);
  } finally {
    if (browser) await Promise.race([browser.close(), delay(5000)]).catch(() => {});
    killTree(server.pid);
    results.total = elapsed();
    fs.writeFileSync(args.results, JSON.stringify(results, null, 2));
  }
  log(results.ok ? 'done' : `FAILED: ${results.error}`);
  process.exitCode = results.ok ? 0 : 1;
}

// A hard deadline of its own: whatever hangs, the script ends and says where it was.
setTimeout(() => {
  results.ok = false;
  results.error = `deadline of ${args.deadlineMs} ms passed`;
  fs.writeFileSync(args.results, JSON.stringify(results, null, 2));
  console.error(`[e2e] deadline of ${args.deadlineMs} ms passed`);
  if (results.serverPid) killTree(results.serverPid);
  process.exit(2);
}, args.deadlineMs).unref();

await main();
