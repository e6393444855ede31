// Microsoft's DebugClient, a second client, sees what tests/dap's own client sees: breakpoint
// conditions, hit conditions and logpoints observe without acting (every journal then replays
// exactly), setVariable is refused, Reverse Continue with a breakpoint set mid-replay lands on the
// previous hit, and function breakpoints honour their conditions with ids of their own.
// Applications: tests/dap/fixtures (tinyshop: app -> orders -> billing -> ledger; counter: add(1)
// .. add(4) at build time). Lines come from their `# @marker` comments.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import testsupport from '@vscode/debugadapter-testsupport';

import { TIMEOUT, marker, within } from './support.mjs';

const { DebugClient } = testsupport;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..', '..');
const FIXTURES = path.join(HERE, '..', 'fixtures');
const TINYSHOP = path.join(FIXTURES, 'tinyshop');
const [APP, ORDERS, BILLING] = ['app.py', 'orders.py', 'billing.py']
  .map((f) => path.join(TINYSHOP, f));
const COUNTER_APP = path.join(FIXTURES, 'counter', 'app.py');
const COUNTER = path.join(FIXTURES, 'counter', 'counter.py');
const PYTHON = process.env.DISTDEV_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const DISTDEV = path.join(path.dirname(PYTHON), 'distdev');

/** One adapter session under DebugClient in a fresh folder; `body(session)` drives it. */
async function withSession(body) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'distdev-debugclient-'));
  const client = new DebugClient(PYTHON, '-mdistdev.dap_adapter', 'distdev',
    { cwd: work, env: { ...process.env, PYTHONHASHSEED: '0' } }, false);
  client.defaultTimeout = TIMEOUT;
  const output = [];
  client.on('output', (event) => output.push(event.body.output));
  const next = (name, timeout = TIMEOUT) => {
    const promise = client.waitForEvent(name, timeout);
    promise.catch(() => {}); // awaited later; never an unhandled rejection
    return promise;
  };
  const session = {
    client, work, output, next,
    /** initialize, launch with `launch`, then `configure()` (breakpoints), configurationDone. */
    async start(launch, configure) {
      await within(client.initializeRequest({
        clientID: 'debugadapter-testsupport', adapterID: 'distdev', linesStartAt1: true,
        columnsStartAt1: true, pathFormat: 'path',
      }), 'initialize');
      const initialized = next('initialized');
      const launched = client.launchRequest({ type: 'distdev', request: 'launch', ...launch });
      launched.catch(() => {});
      await initialized;
      const answers = configure ? await configure() : undefined;
      await within(client.configurationDoneRequest(), 'configurationDone');
      await within(launched, 'launch', 2 * TIMEOUT);
      return answers;
    },
    async top(threadId) {
      const { stackFrames } = (await within(
        client.stackTraceRequest({ threadId, startFrame: 0, levels: 1 }), 'stackTrace')).body;
      return stackFrames[0];
    },
    async scope(frameId, name) {
      const { scopes } = (await within(client.scopesRequest({ frameId }), 'scopes')).body;
      const found = scopes.find((s) => s.name.toLowerCase() === name);
      assert.ok(found, `no ${name} scope in ${JSON.stringify(scopes)}`);
      const { variables } = (await within(
        client.variablesRequest({ variablesReference: found.variablesReference }),
        'variables')).body;
      return { ref: found.variablesReference,
        values: Object.fromEntries(variables.map((v) => [v.name, v.value])) };
    },
    /** Send `command`; the body of the stop that ends it. */
    async travel(command, threadId) {
      const stopped = next('stopped');
      await within(client.send(command, { threadId }), command);
      return (await stopped).body;
    },
    async built() {
      for (let i = 0; i < 200 && !output.join('').includes('built '); i++) {
        await next('output');
      }
      assert.match(output.join(''), /built /);
    },
  };
  try {
    await client.start();
    client._adapterProcess.stdin.on('error', () => {}); // a write after the adapter ended
    await body(session);
  } catch (error) {
    error.message += `\n--- adapter output ---\n${output.join('').slice(-3000)}`;
    throw error;
  } finally {
    await within(client.stop(), 'stop', 10000).catch(() => {});
    const adapter = client._adapterProcess;
    if (adapter && adapter.exitCode === null && adapter.signalCode === null) adapter.kill('SIGKILL');
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** `distdev replay --json` of one service's journal, in another process: its restored state. */
function replayed(out, service) {
  const journal = path.join(out, 'services', ...service.split('/'), 'journal.cbor');
  return JSON.parse(execFileSync(DISTDEV, ['replay', '--json', journal],
    { encoding: 'utf8', env: { ...process.env, PYTHONHASHSEED: '0' } })).state;
}

test('DebugClient: conditions, hit conditions and logpoints observe; setVariable is refused',
  { timeout: 50000 }, () => withSession(async (s) => {
    const out = path.join(s.work, 'out');
    const stop = s.next('stopped', 2 * TIMEOUT);
    await s.start({ app: APP, out, state: path.join(s.work, 'state') }, async () => {
      await s.client.setBreakpointsRequest({ source: { path: ORDERS }, breakpoints: [
        { line: marker(ORDERS, 'orders-place-first'),
          logMessage: "clock read {__import__('time').time() > 0}" },
        { line: marker(ORDERS, 'orders-call-charge'),
          hitCondition: "_billing.charge('eve', 4) is None" },
        { line: marker(ORDERS, 'orders-after-charge'),
          logMessage: "charged again: {_billing.charge('mallory', 2)}" },
      ] });
      await s.client.setBreakpointsRequest({ source: { path: BILLING }, breakpoints: [
        { line: marker(BILLING, 'billing-charge-first'),
          condition: "ledger.record('eve', 1) is None" },
        { line: marker(BILLING, 'billing-call-record'),
          condition: "__import__('datetime').datetime.now() is None" },
        { line: marker(BILLING, 'billing-charge-return'),
          hitCondition: "__import__('time').time() > 0" },
      ] });
    });
    // Only the clock hit condition holds; the refused condition says why.
    const { threadId } = (await stop).body;
    const top = await s.top(threadId);
    assert.equal(top.line, marker(BILLING, 'billing-charge-return'));
    const { ref, values } = await s.scope(top.id, 'locals');
    assert.equal(values.amount, '1200');
    await assert.rejects(s.client.send('setVariable', { variablesReference: ref, name: 'amount',
      value: '777' }), /refused/);
    assert.equal((await s.scope(top.id, 'locals')).values.amount, '1200');
    await within(s.client.continueRequest({ threadId }), 'continue');
    await s.built();
    const said = s.output.join('');
    assert.match(said, /clock read True/);
    assert.match(said, /ledger\.record\('eve', 1\)[\s\S]*refused/);
    assert.match(said, /calling app\/billing\.charge[\s\S]*refused/);
    await within(s.client.disconnectRequest({ terminateDebuggee: true }), 'disconnect');
    for (const service of ['app', 'app/orders', 'app/billing', 'app/billing/ledger']) {
      const state = JSON.stringify(replayed(out, service));
      assert.ok(!/eve|mallory/.test(state), `${service}: ${state}`);
    }
  }));

test('DebugClient: Reverse Continue with a breakpoint set mid-replay lands on the previous hit',
  { timeout: 50000 }, () => withSession(async (s) => {
    const out = path.join(s.work, 'build');
    execFileSync(PYTHON, ['-c', 'import sys, distdev; distdev.App(sys.argv[1], out=sys.argv[2], '
      + 'state=sys.argv[3]).start().close()', COUNTER_APP, out, path.join(s.work, 'st')],
    { env: { ...process.env, PYTHONHASHSEED: '0' } });
    const journal = path.join(out, 'services', 'app', 'counter', 'journal.cbor');
    const calls = JSON.parse(execFileSync(PYTHON, ['-c', 'import sys, json, distdev; print(json.'
      + 'dumps([e.seq for e in distdev.read_journal(sys.argv[1]).events if type(e).__name__ '
      + '== "CallIn"]))', journal], { encoding: 'utf8' }));
    const first = marker(COUNTER, 'counter-add-first');
    const stop = s.next('stopped', 2 * TIMEOUT);
    await s.start({ journal, stopAtEvent: calls[3] });
    const { threadId } = (await stop).body;
    await within(s.client.setBreakpointsRequest({ source: { path: COUNTER },
      breakpoints: [{ line: first }] }), 'setBreakpoints');
    for (const n of ['3', '2']) {
      const back = await s.travel('reverseContinue', threadId);
      assert.equal(back.reason, 'breakpoint', JSON.stringify(back));
      const top = await s.top(back.threadId);
      assert.equal(top.line, first);
      assert.equal((await s.scope(top.id, 'locals')).values.n, n);
    }
    // setVariable in a replay is refused too, and Step Back still travels.
    const top = await s.top(threadId);
    const { ref } = await s.scope(top.id, 'locals');
    await assert.rejects(s.client.send('setVariable', { variablesReference: ref, name: 'n',
      value: '7' }), /refused/);
    assert.equal((await s.travel('stepBack', threadId)).reason, 'step');
  }));

test('DebugClient: function breakpoints honour conditions, with ids of their own',
  { timeout: 50000 }, () => withSession(async (s) => {
    const first = marker(COUNTER, 'counter-add-first');
    const stop = s.next('stopped', 2 * TIMEOUT);
    const [functions, lines] = await s.start({ app: COUNTER_APP, out: path.join(s.work, 'out'),
      state: path.join(s.work, 'state') }, async () => {
      const own = (await s.client.setBreakpointsRequest({ source: { path: COUNTER },
        breakpoints: [{ line: first, condition: 'n == 4' }] })).body.breakpoints;
      const named = (await s.client.send('setFunctionBreakpoints', { breakpoints: [
        { name: 'counter.add', condition: 'n == 2' }] })).body.breakpoints;
      return [named, own];
    });
    assert.equal(functions[0].verified, true);
    assert.equal(functions[0].line, first);
    assert.notEqual(functions[0].id, lines[0].id);
    let body = (await stop).body;
    assert.deepEqual([body.reason, body.hitBreakpointIds], ['function breakpoint',
      [functions[0].id]]);
    let top = await s.top(body.threadId);
    assert.equal((await s.scope(top.id, 'locals')).values.n, '2');
    body = await s.travel('continue', body.threadId);
    assert.deepEqual([body.reason, body.hitBreakpointIds], ['breakpoint', [lines[0].id]]);
    top = await s.top(body.threadId);
    assert.equal((await s.scope(top.id, 'locals')).values.n, '4');
  }));
