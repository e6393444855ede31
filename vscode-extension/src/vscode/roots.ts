/** Which application a file belongs to: the language server's graph, else a scan of the workspace. */

import { promises as fs } from 'node:fs';

import * as vscode from 'vscode';

import { rootByScan } from '../core/rootScan';
import { rootContaining } from '../core/serviceGraph';
import { DistdevClient } from './client';

const GRAPH_WAIT_MS = 5000;

function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([work, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms))]);
}

export async function findRoot(client: DistdevClient, file: string): Promise<string | undefined> {
  try {
    // F5 must not wait long on a server that is still starting: the scan below answers too.
    const graph = await within(client.serviceGraph(), GRAPH_WAIT_MS);
    const root = graph && rootContaining(graph, file);
    if (root) return root;
  } catch {
    // the server cannot answer; the scan can
  }
  const uris = await vscode.workspace.findFiles('**/*.py', '{**/node_modules/**,**/.venv/**,**/.distdev/**}', 5000);
  const files = new Map<string, string>();
  await Promise.all(uris.map(async (uri) => {
    try {
      files.set(uri.fsPath, await fs.readFile(uri.fsPath, 'utf8'));
    } catch {
      // unreadable: it imports nothing we can see
    }
  }));
  return rootByScan(file, files);
}
