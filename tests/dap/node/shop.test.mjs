// Microsoft's DebugClient (@vscode/debugadapter-testsupport) drives `python -m distdev.dap_adapter`
// on examples/shop (app -> orders -> billing -> billing/ledger): the application is built and
// served, an order placed through its HTTP ingress stops on orders' proxy call, Step Into lands on
// billing's first line, a breakpoint in the nested ledger service is hit, Step Out returns through
// both, variables are read in every frame, the order completes and the session ends cleanly.
// Lines come from the shop's `# @marker` comments.
//
// Run: `node --test tests/dap/node/` (after `npm ci --prefix tests/dap/node`). The interpreter is
// DISTDEV_PYTHON, else the repository's .venv/bin/python.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import testsupport from '@vscode/debugadapter-testsupport';

import { TIMEOUT, marker, within } from './support.mjs';

const { DebugClient } = testsupport;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..', '..');
const SHOP = path.join(REPO, 'examples', 'shop');
const [APP, ORDERS, BILLING, LEDGER] =
  ['app.py', 'orders/orders.py', 'billing/billing.py', 'billing/ledger.py']
    .map((f) => path.join(SHOP, f));
const PYTHON = process.env.DISTDEV_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const SEP = ' \u203a ';

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A free loopback port for the shop's ingress. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** POST `body` as JSON to the ingress; resolves with the parsed answer. */
function post(port, route, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const request = http.request({
      host: '127.0.0.1', port, path: route, method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
    }, (response) => {
      let text = '';
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode, body: JSON.parse(text) });
        } catch (error) {
          reject(new Error(`${route} answered ${response.statusCode}: ${text}`));
        }
      });
    });
    request.on('error', reject);
    request.end(data);
  });
}

/** Place an order once the ingress listens (the build runs first); retries refused connects. */
async function placeOrder(port, order, ms = 2 * TIMEOUT) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await post(port, '/place_order', order);
    } catch (error) {
      if (error.code !== 'ECONNREFUSED' || Date.now() > deadline) throw error;
      await delay(100);
    }
  }
}

/** Process ids of `pid`'s descendants (Linux /proc; empty elsewhere). */
function descendants(pid) {
  if (!fs.existsSync('/proc')) return [];
  const children = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(entry));
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

/** Whether `pid` is still running (a zombie counts as gone). */
function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

test('DebugClient: nested breakpoint, step into a proxy call, step out, variables, clean end',
  { timeout: 55000 }, async () => {
    const call = marker(ORDERS, 'orders-call-charge');
    const afterCall = marker(ORDERS, 'orders-after-charge');
    const placeCall = marker(APP, 'app-call-place');
    const chargeFirst = marker(BILLING, 'billing-charge-first');
    const recordCall = marker(BILLING, 'billing-call-record');
    const chargeReturn = marker(BILLING, 'billing-charge-return');
    const record = marker(LEDGER, 'ledger-record');
    const port = await freePort();
    const runtimeDir = execFileSync(PYTHON, ['-c',
      'import distdev, pathlib; print(pathlib.Path(distdev.__file__).resolve().parent)'],
    { encoding: 'utf8' }).trim();

    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'distdev-debugclient-'));
    const env = { ...process.env, PYTHONHASHSEED: '0' };
    // DebugClient spawns `runtime executable` with one argument: `-mdistdev.dap_adapter` is
    // Python's `-m distdev.dap_adapter` in one word.
    const client = new DebugClient(PYTHON, '-mdistdev.dap_adapter', 'distdev',
      { cwd: work, env }, false);
    client.defaultTimeout = TIMEOUT;
    const output = [];
    let stderr = '';
    client.on('output', (event) => output.push(event.body.output));
    const transcript = () =>
      `\n--- adapter output ---\n${output.join('').slice(-3000)}` +
      `\n--- adapter stderr ---\n${stderr.slice(-3000)}`;

    /** A promise of the next `name` event; registered now, so an early event is not missed. */
    const next = (name, timeout = TIMEOUT) => {
      const promise = client.waitForEvent(name, timeout);
      promise.catch(() => {}); // awaited later; never an unhandled rejection
      return promise;
    };
    const stack = async (threadId) =>
      (await within(client.stackTraceRequest({ threadId, startFrame: 0, levels: 20 }),
        'stackTrace')).body;
    const locals = async (frameId) => {
      const { scopes } = (await within(client.scopesRequest({ frameId }), 'scopes')).body;
      const scope = scopes.find((s) => s.name.toLowerCase() === 'locals');
      assert.ok(scope, `no Locals scope in ${JSON.stringify(scopes)}`);
      const { variables } = (await within(
        client.variablesRequest({ variablesReference: scope.variablesReference }),
        'variables')).body;
      return Object.fromEntries(variables.map((v) => [v.name, v.value]));
    };
    /** Send a step (or continue) request and return the body of the stop that ends it. */
    const step = async (command, threadId) => {
      const stopped = next('stopped');
      await within(client.send(command, { threadId }), command);
      return (await stopped).body;
    };
    const assertUserFrames = (frames) => {
      for (const frame of frames) {
        assert.match(frame.name, /^app(\/[\w-]+)* \u203a \S/, `not service-labelled: ${frame.name}`);
        const file = fs.realpathSync(frame.source.path);
        assert.ok(!file.startsWith(runtimeDir + path.sep), `distdev frame: ${JSON.stringify(frame)}`);
        assert.ok(!file.split(path.sep).includes('dap_adapter'), `adapter frame: ${file}`);
        assert.ok(file.startsWith(SHOP + path.sep), `frame outside the app: ${file}`);
      }
    };

    let adapter;
    let exited = Promise.resolve({});
    try {
      await client.start();
      adapter = client._adapterProcess;
      adapter.stderr.on('data', (data) => { stderr += data.toString(); });
      adapter.stdin.on('error', () => {}); // a write after the adapter ended is not a crash
      exited = new Promise((resolve) => {
        adapter.on('exit', (code, signal) => resolve({ code, signal }));
      });

      const capabilities = (await within(client.initializeRequest({
        clientID: 'debugadapter-testsupport', adapterID: 'distdev', linesStartAt1: true,
        columnsStartAt1: true, pathFormat: 'path', supportsRunInTerminalRequest: false,
      }), 'initialize')).body;
      assert.equal(capabilities.supportsConfigurationDoneRequest, true);

      const initialized = next('initialized');
      const firstStop = next('stopped', 2 * TIMEOUT);
      const launched = client.launchRequest({
        type: 'distdev', request: 'launch', name: 'shop', app: APP, port,
        out: path.join(work, 'out'), state: path.join(work, 'state'),
      });
      launched.catch(() => {});
      await initialized;
      for (const [file, line] of [[ORDERS, call], [LEDGER, record]]) {
        const { breakpoints } = (await within(client.setBreakpointsRequest({
          source: { path: file }, breakpoints: [{ line }],
        }), 'setBreakpoints')).body;
        assert.equal(breakpoints.length, 1);
        assert.equal(breakpoints[0].verified, true, JSON.stringify(breakpoints[0]));
        assert.equal(breakpoints[0].line, line);
      }
      await within(client.configurationDoneRequest(), 'configurationDone');
      await within(launched, 'launch', 2 * TIMEOUT);

      // The application is built and served; an order through the ingress runs orders.place.
      const order = placeOrder(port, { user: 'ann', item: 'mug', quantity: 2 });
      order.catch(() => {}); // awaited below

      // 1. The caller stops on its proxy call; its variables are readable.
      const stop1 = (await firstStop).body;
      assert.equal(stop1.reason, 'breakpoint', transcript());
      const thread = stop1.threadId;
      let frames = (await stack(thread)).stackFrames;
      assert.deepEqual(frames.map((f) => [f.name, f.line, f.source.path]),
        [[`app/orders${SEP}place`, call, ORDERS], [`app${SEP}place_order`, placeCall, APP]]);
      assertUserFrames(frames);
      const callerLocals = await locals(frames[0].id);
      assert.deepEqual([callerLocals.user, callerLocals.item, callerLocals.quantity],
        ["'ann'", "'mug'", '2']);
      const cents = callerLocals.cents;
      assert.match(cents, /^\d+$/);

      // 2. Step Into the proxy call lands on the callee's first line, in the callee's service.
      assert.equal((await step('stepIn', thread)).reason, 'step');
      frames = (await stack(thread)).stackFrames;
      assert.deepEqual(frames.map((f) => f.name),
        [`app/billing${SEP}charge`, `app/orders${SEP}place`, `app${SEP}place_order`]);
      assert.deepEqual([frames[0].line, frames[0].source.path], [chargeFirst, BILLING]);
      assert.equal(frames[1].line, call);
      assertUserFrames(frames);
      const calleeLocals = await locals(frames[0].id);
      assert.deepEqual([calleeLocals.user, calleeLocals.cents], ["'ann'", cents]);
      assert.equal((await locals(frames[1].id)).item, "'mug'"); // the caller's frame

      // 3. Continue: the breakpoint in the nested service (app/billing/ledger) is hit.
      const stop3 = await step('continue', thread);
      assert.equal(stop3.reason, 'breakpoint');
      const whole = await stack(stop3.threadId);
      frames = whole.stackFrames;
      assert.deepEqual(frames.map((f) => f.name),
        [`app/billing/ledger${SEP}record`, `app/billing${SEP}charge`, `app/orders${SEP}place`,
          `app${SEP}place_order`]);
      assert.equal(whole.totalFrames, 4);
      assert.deepEqual([frames[0].line, frames[0].source.path], [record, LEDGER]);
      assert.equal(frames[1].line, recordCall);
      assertUserFrames(frames);
      const ledgerLocals = await locals(frames[0].id);
      assert.deepEqual([ledgerLocals.user, ledgerLocals.cents], ["'ann'", cents]);
      assert.match((await locals(frames[1].id)).receipt_id, /^'[0-9a-f-]{36}'$/);

      // 4. Step Out of the ledger returns into billing, after the call; Step Out again into
      //    orders, at (or just after) the proxy call, with the receipt.
      assert.equal((await step('stepOut', stop3.threadId)).reason, 'step');
      frames = (await stack(stop3.threadId)).stackFrames;
      assert.equal(frames[0].name, `app/billing${SEP}charge`);
      assert.ok(frames[0].line >= recordCall && frames[0].line <= chargeReturn,
        `billing line ${frames[0].line}`);
      assertUserFrames(frames);
      let billingLocals = await locals(frames[0].id);
      if (!('entry' in billingLocals)) { // stopped on the call's line as it returns: one more step
        await step('next', stop3.threadId);
        frames = (await stack(stop3.threadId)).stackFrames;
        assert.equal(frames[0].name, `app/billing${SEP}charge`);
        billingLocals = await locals(frames[0].id);
      }
      assert.match(billingLocals.entry, /^\d+$/);

      assert.equal((await step('stepOut', stop3.threadId)).reason, 'step');
      frames = (await stack(stop3.threadId)).stackFrames;
      assert.deepEqual(frames.map((f) => f.name), [`app/orders${SEP}place`, `app${SEP}place_order`]);
      assert.ok([call, afterCall].includes(frames[0].line), `orders line ${frames[0].line}`);
      if (frames[0].line === call) { // stopped on the call's line as it returns: one more step
        await step('next', stop3.threadId);
        frames = (await stack(stop3.threadId)).stackFrames;
        assert.equal(frames[0].line, afterCall);
      }
      assertUserFrames(frames);
      const back = await locals(frames[0].id);
      assert.match(back.receipt, /Receipt/);
      assert.equal(back.cents, cents);

      // The order completes once the program runs on.
      await within(client.continueRequest({ threadId: stop3.threadId }), 'continue');
      const placed = await within(order, 'the order');
      assert.equal(placed.status, 200, JSON.stringify(placed.body));
      assert.match(JSON.stringify(placed.body), /order_id/);

      // 5. Disconnect: the adapter and everything under it exit.
      const processes = descendants(adapter.pid);
      assert.ok(processes.length > 0, 'debugpy and the debuggee run under the adapter');
      await within(client.disconnectRequest({ terminateDebuggee: true }), 'disconnect');
      adapter.stdin.end();
      const { code, signal } = await within(exited, 'the adapter exiting', 15000);
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, transcript());
      let left = processes.filter(alive);
      for (let i = 0; i < 50 && left.length; i++) {
        await delay(100);
        left = left.filter(alive);
      }
      assert.deepEqual(left, [], 'processes left behind');
    } catch (error) {
      error.message += transcript();
      throw error;
    } finally {
      // DebugClient.stop() disconnects and kills the adapter; its request has no timeout, so
      // it is bounded here (the adapter may already have exited).
      await within(Promise.race([client.stop(), exited]), 'stop', 10000).catch(() => {});
      if (adapter && adapter.exitCode === null && adapter.signalCode === null) adapter.kill('SIGKILL');
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
