import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { candidates, findInterpreter, InterpreterNotFound, InterpreterSystem, ProbeResult } from '../src/core/interpreter';
import { nodeSystem, probe } from '../src/core/nodeSystem';

/** A described machine: these files exist; these interpreters have distdev. */
function machine(files: string[], withDistdev: string[], pathEnv = '/usr/bin'): InterpreterSystem & { probed: string[] } {
  const probed: string[] = [];
  return {
    platform: 'linux', pathEnv, probed,
    isFile: (file) => files.includes(file),
    probe: async (python): Promise<ProbeResult> => {
      probed.push(python);
      return withDistdev.includes(python) ? { version: '0.1.0' } : { problem: "ModuleNotFoundError: No module named 'distdev'" };
    },
  };
}

describe('interpreter discovery', () => {
  it('tries the setting alone when it is set', () => {
    assert.deepEqual(candidates({ setting: '${workspaceFolder}/env/bin/python', folders: ['/ws'] }, 'linux'),
      [{ command: '/ws/env/bin/python', source: 'the distdev.python setting' }]);
  });

  it('tries each folder\'s .venv, then python3 and python on PATH', () => {
    assert.deepEqual(candidates({ setting: '', folders: ['/a', '/b'] }, 'linux').map((c) => c.command),
      ['/a/.venv/bin/python', '/b/.venv/bin/python', 'python3', 'python']);
  });

  it('prefers the workspace .venv over PATH', async () => {
    const system = machine(['/ws/.venv/bin/python', '/usr/bin/python3'], ['/ws/.venv/bin/python', '/usr/bin/python3']);
    const found = await findInterpreter({ setting: '', folders: ['/ws'] }, system);
    assert.equal(found.path, '/ws/.venv/bin/python');
    assert.deepEqual(system.probed, ['/ws/.venv/bin/python']);
  });

  it('skips interpreters without distdev and takes the next one on PATH', async () => {
    const system = machine(['/ws/.venv/bin/python', '/usr/bin/python3', '/opt/bin/python'], ['/opt/bin/python'], '/usr/bin:/opt/bin');
    const found = await findInterpreter({ setting: '', folders: ['/ws'] }, system);
    assert.deepEqual([found.path, found.source], ['/opt/bin/python', 'PATH']);
  });

  it('names every candidate and why, when none has distdev', async () => {
    const system = machine(['/usr/bin/python3'], []);
    await assert.rejects(findInterpreter({ setting: '', folders: ['/ws'] }, system), (error: Error) => {
      assert.ok(error instanceof InterpreterNotFound);
      assert.match(error.message, /\/ws\/\.venv\/bin\/python \(the workspace's \.venv \(\/ws\)\): not found/);
      assert.match(error.message, /\/usr\/bin\/python3 \(PATH\): ModuleNotFoundError: No module named 'distdev'/);
      assert.match(error.message, /python \(PATH\): not found/);
      assert.match(error.message, /set "distdev\.python"/);
      return true;
    });
  });

  it('does not look elsewhere when the setting names an interpreter without distdev', async () => {
    const system = machine(['/custom/python', '/ws/.venv/bin/python'], ['/ws/.venv/bin/python']);
    await assert.rejects(findInterpreter({ setting: '/custom/python', folders: ['/ws'] }, system),
      /\/custom\/python \(the distdev\.python setting\): ModuleNotFoundError.*change the "distdev\.python" setting/);
  });

  describe('on this machine', () => {
    // The repository's interpreter has distdev (DISTDEV_PYTHON overrides, as in the other node tests).
    const repo = path.resolve(__dirname, '..', '..', '..');
    const python = process.env.DISTDEV_PYTHON || path.join(repo, '.venv', 'bin', 'python');

    it('finds distdev through a workspace .venv that is a real virtual environment', async function () {
      this.timeout(30000);
      const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'distdev-interp-'));
      try {
        // The whole environment, linked: a lone link to its python would lose the venv's
        // pyvenv.cfg and with it the installed packages.
        fs.symlinkSync(path.dirname(path.dirname(python)), path.join(ws, '.venv'));
        const found = await findInterpreter({ setting: '', folders: [ws] }, { ...nodeSystem(), pathEnv: '' });
        assert.equal(found.path, path.join(ws, '.venv', 'bin', 'python'));
        assert.match(found.version, /^\d+\.\d+/);
      } finally {
        fs.rmSync(ws, { recursive: true, force: true });
      }
    });

    it('is not misled by an application file named like a standard-library module', async function () {
      this.timeout(30000);
      const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'distdev-stdlib-names-'));
      const here = process.cwd();
      try {
        // distdev imports secrets: without -P, python would import this file instead.
        fs.writeFileSync(path.join(ws, 'secrets.py'), 'raise SystemExit("the app\'s secrets.py was imported")\n');
        process.chdir(ws);
        const result = await probe(python);
        assert.match(result.version ?? '', /^\d+\.\d+/, result.problem);
      } finally {
        process.chdir(here);
        fs.rmSync(ws, { recursive: true, force: true });
      }
    });

    it('reports a program that is not a working interpreter', async function () {
      this.timeout(30000);
      const result = await probe('/bin/false');
      assert.equal(result.version, undefined);
      assert.match(result.problem ?? '', /did not run/);
    });
  });
});
