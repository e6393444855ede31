import * as assert from 'node:assert/strict';

import { journalHtml, parseListing, replayConfig } from '../src/core/journal';
import {
  renderGraph, rootContaining, ServiceGraph, ServiceNode, serviceDescription, withoutBuildOutput,
} from '../src/core/serviceGraph';
import { rootByScan } from '../src/core/rootScan';
import { DapTraceWriter, traceFile } from '../src/core/trace';

function node(id: string, file: string, children: ServiceNode[] = []): ServiceNode {
  return { id, file, exports: [{ name: 'f', signature: 'f(x: int) -> int', line: 3 }], hosting: [], children, error: null };
}

const graph: ServiceGraph = { roots: [
  node('app', '/ws/app.py', [node('app/orders', '/ws/orders/orders.py'),
    node('app/billing', '/ws/billing/billing.py', [node('app/billing/ledger', '/ws/billing/ledger.py')])]),
  node('tool', '/ws/tool.py'),
] };

describe('service graph', () => {
  it('finds the root of a file at any depth', () => {
    assert.equal(rootContaining(graph, '/ws/billing/ledger.py'), '/ws/app.py');
    assert.equal(rootContaining(graph, '/ws/tool.py'), '/ws/tool.py');
    assert.equal(rootContaining(graph, '/ws/unrelated.py'), undefined);
  });

  it('describes a service by its file relative to the workspace and its ingress', () => {
    const root = { ...graph.roots[0], hosting: [{ kind: 'process', http: 8080 }] };
    assert.equal(serviceDescription(root, '/ws'), 'app.py · http :8080');
    assert.equal(serviceDescription(graph.roots[0].children[1].children[0], '/other'), '/ws/billing/ledger.py');
  });

  it('describes a resource by its kind and the file that declares it', () => {
    const db = { ...node('app/reviews', '/ws/app.py'), kind: 'sql' };
    assert.equal(serviceDescription(db, '/ws'), 'sql resource · app.py');
    assert.match(renderGraph({ roots: [{ ...node('app', '/ws/app.py'), children: [db] }] }),
      / {2}app\/reviews {2}\[sql\] {2}\(\/ws\/app\.py\)/);
  });

  it('leaves out the copies of applications in distdev\'s build output', () => {
    const built = { roots: [node('app', '/ws/.distdev/build/services/app/bundle/app.py'), ...graph.roots] };
    assert.deepEqual(withoutBuildOutput(built).roots.map((r) => r.file), ['/ws/app.py', '/ws/tool.py']);
  });

  it('draws the tree with every export', () => {
    const text = renderGraph(graph);
    assert.match(text, /^app {2}\(\/ws\/app\.py\)\n {4}f\(x: int\) -> int\n {2}app\/orders/);
    assert.match(text, / {4}app\/billing\/ledger {2}\(\/ws\/billing\/ledger\.py\)/);
  });
});

describe('journal view', () => {
  const listing = parseListing(JSON.stringify({ service: 'app/catalog', torn: null, events: [
    { seq: 0, kind: 'header', offset: 0, summary: 'header of app/catalog (1 files)' },
    { seq: 1, kind: 'digest', offset: 700, summary: 'digest of 1 changed globals', boundary: false },
    { seq: 2, kind: 'call-in', offset: 726, summary: "call in load({'<b>': 1}) from app", boundary: true },
  ] }));

  it('escapes summaries and offers a replay for every event a replay can stop before', () => {
    const html = journalHtml(listing, '/ws/j.cbor', 'NONCE', 'vscode-resource:');
    assert.ok(html.includes('load({&#39;&lt;b&gt;&#39;: 1})'));
    assert.ok(!html.includes('<b>'));
    assert.equal((html.match(/data-seq="/g) ?? []).length, 1);
    assert.ok(html.includes('data-seq="2"'));
    assert.ok(html.includes("script-src 'nonce-NONCE'"));
  });

  it('turns a chosen event into a replay configuration', () => {
    assert.deepEqual(replayConfig('/ws/j.cbor', 'app/catalog', 2), {
      type: 'distdev', request: 'launch', name: 'distdev: Replay app/catalog to event 2',
      journal: '/ws/j.cbor', stopAtEvent: 2,
    });
  });

  it('rejects output that is not a listing', () => {
    assert.throws(() => parseListing('{"rows": []}'), /not a journal listing/);
  });
});

describe('DAP trace', () => {
  it('is enabled by the setting, else the environment variable', () => {
    assert.equal(traceFile('/a', { DISTDEV_DAP_TRACE: '/b' }), '/a');
    assert.equal(traceFile('', { DISTDEV_DAP_TRACE: '/b' }), '/b');
    assert.equal(traceFile(undefined, {}), undefined);
  });

  it('writes one JSON line per message, in order', () => {
    const written: string[] = [];
    const writer = new DapTraceWriter('/t', 's1', (_file, text) => written.push(text));
    writer.write('toAdapter', { seq: 1, type: 'request', command: 'initialize' });
    writer.write('fromAdapter', { seq: 1, type: 'response', command: 'initialize' });
    const lines = written.map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.session, l.direction, l.message.type]),
      [['s1', 'toAdapter', 'request'], ['s1', 'fromAdapter', 'response']]);
    assert.ok(written.every((l) => l.endsWith('\n')));
  });
});

describe('root scan (no language server)', () => {
  const files = new Map([
    ['/ws/app.py', 'billing = import_service("./billing/billing.py")\norders = import_service(\'./orders/orders.py\')'],
    ['/ws/orders/orders.py', 'x = 1'],
    ['/ws/billing/billing.py', 'ledger = import_service("./ledger.py")'],
    ['/ws/billing/ledger.py', ''],
    ['/ws/alone.py', 'print(1)'],
  ]);

  it('walks from a nested service up to the file that nothing imports', () => {
    assert.equal(rootByScan('/ws/billing/ledger.py', files), '/ws/app.py');
    assert.equal(rootByScan('/ws/orders/orders.py', files), '/ws/app.py');
    assert.equal(rootByScan('/ws/app.py', files), '/ws/app.py');
    assert.equal(rootByScan('/ws/alone.py', files), '/ws/alone.py');
  });

  it('stops at a cycle instead of looping', () => {
    const cycle = new Map([['/a.py', 'import_service("./b.py")'], ['/b.py', 'import_service("./a.py")']]);
    assert.ok(['/a.py', '/b.py'].includes(rootByScan('/a.py', cycle)));
  });
});
