import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { importedServices, resolveServicePath, ServicePathError } from '../src/core/rootScan';

/** One case of tests/fixtures/service_paths.json, which distdev.rules is checked against too. */
interface Case {
  why: string;
  importer: string;
  literal: string;
  expect?: string;
  error?: ServicePathError;
  source?: string;
}

// Compiled to out/test/: the repository's tests folder is three levels up.
const FIXTURE = path.resolve(__dirname, '../../../tests/fixtures/service_paths.json');
const cases: Case[] = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')).cases;

describe('service paths, as distdev.rules resolves them', () => {
  it('has cases to check', () => {
    assert.ok(cases.length >= 10);
  });

  for (const c of cases) {
    it(`${c.why}: ${JSON.stringify(c.literal)} from ${c.importer}`, () => {
      const want = c.expect !== undefined ? { path: c.expect } : { error: c.error };
      assert.deepEqual(resolveServicePath(c.importer, c.literal), want);
    });
  }

  for (const c of cases.filter((each) => each.source !== undefined)) {
    it(`reads the literal from source: ${c.why}`, () => {
      const app = path.resolve('/ws/shop');
      const found = importedServices(path.join(app, c.importer), c.source!);
      assert.deepEqual(found, c.expect !== undefined ? [path.join(app, c.expect)] : []);
    });
  }
});
