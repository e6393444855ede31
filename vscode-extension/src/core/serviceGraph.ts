/**
 * The service graph as the language server's `distdev/serviceGraph` request returns it
 * (lsp/server.py), and the questions the extension asks of it; no `vscode` here.
 */

import * as path from 'node:path';

export const SERVICE_GRAPH_REQUEST = 'distdev/serviceGraph';

export interface ServiceExport {
  name: string;
  signature: string;
  /** 0-based line of its definition. */
  line: number;
}

export interface ServiceNode {
  /** The runtime's id: `app`, `app/orders`, `app/billing/ledger`. */
  id: string;
  file: string;
  exports: ServiceExport[];
  hosting: { kind: string; http: number | null; interleave?: boolean }[];
  children: ServiceNode[];
  error: string | null;
  /** `service`, or a resource's kind (`sql`, `kv`, `secret`): a node under its declaring service. */
  kind?: string;
}

/** Whether a node is a resource (`resources.sql(...)`) rather than a service. */
export function isResource(node: ServiceNode): boolean {
  return node.kind !== undefined && node.kind !== 'service';
}

export interface ServiceGraph {
  roots: ServiceNode[];
}

function samePath(a: string, b: string): boolean {
  return path.resolve(a) === path.resolve(b);
}

function contains(node: ServiceNode, file: string): boolean {
  return samePath(node.file, file) || node.children.some((child) => contains(child, file));
}

/**
 * The root file of the application that `file` belongs to: `file` itself if it is a root, else
 * the first root whose tree contains it; undefined if no tree does.
 */
export function rootContaining(graph: ServiceGraph, file: string): string | undefined {
  const own = graph.roots.find((root) => samePath(root.file, file));
  if (own) return own.file;
  return graph.roots.find((root) => contains(root, file))?.file;
}

/**
 * The graph without applications inside a `.distdev` folder: those are distdev's own build
 * output (each service's bundle is a copy of its code), not the user's applications.
 */
export function withoutBuildOutput(graph: ServiceGraph): ServiceGraph {
  return { roots: graph.roots.filter((root) => !root.file.split(/[\\/]/).includes('.distdev')) };
}

/** The name a service shows in the tree: the last part of its id. */
export function serviceLabel(node: ServiceNode): string {
  return node.id.split('/').pop() || node.id;
}

/** The description beside it: where its file is (relative to `base` when inside it), and hosting. */
export function serviceDescription(node: ServiceNode, base: string | undefined): string {
  const relative = base ? path.relative(base, node.file) : node.file;
  const file = relative && !relative.startsWith('..') ? relative : node.file;
  const http = node.hosting.find((h) => h.http !== null)?.http;
  const parts = isResource(node) ? [`${node.kind} resource`, file] : [file];
  if (http !== undefined && http !== null) parts.push(`http :${http}`);
  if (node.error) parts.push(`⚠ ${node.error}`);
  return parts.join(' · ');
}

/** A hover text: the id and every export's signature. */
export function serviceTooltip(node: ServiceNode): string {
  const lines = [node.id, node.file];
  if (node.exports.length) lines.push('', ...node.exports.map((e) => e.signature));
  if (node.error) lines.push('', node.error);
  return lines.join('\n');
}

/** A plain-text drawing of the graph, for the "Show Service Graph" document. */
export function renderGraph(graph: ServiceGraph): string {
  const out: string[] = [];
  const walk = (node: ServiceNode, depth: number): void => {
    const pad = '  '.repeat(depth);
    const kind = isResource(node) ? `  [${node.kind}]` : '';
    out.push(`${pad}${node.id}${kind}  (${node.file})${node.error ? `  ⚠ ${node.error}` : ''}`);
    for (const e of node.exports) out.push(`${pad}    ${e.signature}`);
    for (const child of node.children) walk(child, depth + 1);
  };
  for (const root of graph.roots) walk(root, 0);
  return out.length ? out.join('\n') + '\n' : 'No distdev application found in this workspace.\n';
}
