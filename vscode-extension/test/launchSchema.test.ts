import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DEBUG_TYPE, LAUNCH_OPTION_TYPES } from '../src/core/launchConfig';

// Tests run from out/test/; package.json is two folders up from there.
const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8'));

function debuggerContribution(): any {
  const found = manifest.contributes.debuggers.filter((d: any) => d.type === DEBUG_TYPE);
  assert.equal(found.length, 1, 'package.json declares the distdev debugger once');
  return found[0];
}

describe('the launch.json schema in package.json', () => {
  it('has exactly the options of the TypeScript interface, with the same types', () => {
    const properties = debuggerContribution().configurationAttributes.launch.properties;
    const schemaTypes = Object.fromEntries(
      Object.entries(properties).map(([name, spec]: [string, any]) => [name, spec.type]));
    assert.deepEqual(schemaTypes, { ...LAUNCH_OPTION_TYPES });
  });

  it('offers both snippets and an initial configuration that pass the schema', () => {
    const contribution = debuggerContribution();
    const labels = contribution.configurationSnippets.map((s: any) => s.label);
    assert.deepEqual(labels, ['distdev: Debug application', 'distdev: Replay journal']);
    const bodies = [...contribution.initialConfigurations, ...contribution.configurationSnippets.map((s: any) => s.body)];
    for (const body of bodies) {
      assert.equal(body.type, DEBUG_TYPE);
      assert.equal(body.request, 'launch');
      for (const key of Object.keys(body)) {
        if (['type', 'request', 'name'].includes(key)) continue;
        assert.ok(key in LAUNCH_OPTION_TYPES, `snippet field ${key} is not a launch option`);
      }
    }
  });

  it('declares every command it registers and the services view', () => {
    const commands = manifest.contributes.commands.map((c: any) => c.command);
    for (const id of ['distdev.build', 'distdev.replayJournal', 'distdev.showServiceGraph']) {
      assert.ok(commands.includes(id), id);
    }
    const source = fs.readFileSync(path.resolve(__dirname, '..', '..', 'src', 'extension.ts'), 'utf8');
    for (const id of commands) assert.ok(source.includes(`'${id}'`), `${id} is declared but not registered`);
    assert.ok(manifest.contributes.views.explorer.some((v: any) => v.id === 'distdev.services'));
  });
});
