import * as assert from 'node:assert/strict';

import { resolveLaunch, ResolveContext } from '../src/core/configResolver';

const ROOT = '/ws/shop/app.py';
const NESTED = '/ws/shop/orders/orders.py';

function context(activeFile: string | undefined, roots: Record<string, string> = {}): ResolveContext {
  return { activeFile, folder: '/ws/shop', findRoot: async (file) => roots[file] };
}

describe('resolveLaunch (the debug configuration provider)', () => {
  it('fills an empty configuration (F5 with no launch.json) from the active application file', async () => {
    const result = await resolveLaunch({}, context(ROOT, { [ROOT]: ROOT }));
    assert.deepEqual(result, { config: {
      type: 'distdev', request: 'launch', name: 'distdev: Debug app.py', app: ROOT, cwd: '/ws/shop',
    } });
  });

  it('debugs a nested service through the root of its application', async () => {
    const result = await resolveLaunch({}, context(NESTED, { [NESTED]: ROOT }));
    assert.ok('config' in result);
    assert.equal(result.config.app, ROOT);
  });

  it('falls back to the active file when no service graph knows it', async () => {
    const result = await resolveLaunch({}, context('/ws/other.py'));
    assert.ok('config' in result);
    assert.equal(result.config.app, '/ws/other.py');
  });

  it('replays the journal open in the active editor', async () => {
    const journal = '/ws/shop/.distdev/build/services/app/orders/journal.cbor';
    const result = await resolveLaunch({}, context(journal));
    assert.ok('config' in result);
    assert.equal(result.config.journal, journal);
    assert.equal(result.config.app, undefined);
  });

  it('explains what to open when F5 has nothing to debug', async () => {
    for (const active of [undefined, '/ws/README.md']) {
      const result = await resolveLaunch({}, context(active));
      assert.ok('error' in result);
      assert.match(result.error, /open the application's root service.*launch\.json/);
    }
  });

  it('keeps a launch.json configuration as written and adds only a working folder', async () => {
    const given = { type: 'distdev', request: 'launch', name: 'mine', app: 'app.py', port: 0, env: { A: '1' } };
    const result = await resolveLaunch(given, context(NESTED));
    assert.deepEqual(result, { config: { ...given, cwd: '/ws/shop' } });
    const withCwd = await resolveLaunch({ ...given, cwd: '/elsewhere' }, context(NESTED));
    assert.ok('config' in withCwd);
    assert.equal(withCwd.config.cwd, '/elsewhere');
  });

  it('refuses configurations the adapter cannot run, saying what to write', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ type: 'distdev', request: 'launch', name: 'x' }, /needs "app".*or "journal"/],
      [{ type: 'distdev', request: 'launch', name: 'x', app: 'a.py', journal: 'j.cbor' }, /either "app" or "journal"/],
      [{ type: 'distdev', request: 'attach', name: 'x', app: 'a.py' }, /"request" must be "launch"/],
    ];
    for (const [given, message] of cases) {
      const result = await resolveLaunch(given, context(ROOT));
      assert.ok('error' in result, JSON.stringify(given));
      assert.match(result.error, message);
    }
  });
});
