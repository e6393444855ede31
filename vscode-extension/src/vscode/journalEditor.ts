/** Opening a .cbor journal shows its events (read-only), each with a "Replay to here" button. */

import * as crypto from 'node:crypto';

import * as vscode from 'vscode';

import { journalHtml, JournalListing, parseListing, replayConfig, escapeHtml } from '../core/journal';
import { moduleArgs } from '../core/interpreter';
import { run } from '../core/nodeSystem';
import { Interpreters } from './interpreters';

/** `distdev inspect --json FILE`, run with the workspace's interpreter. */
export async function inspectJournal(interpreters: Interpreters, file: vscode.Uri): Promise<JournalListing> {
  const python = await interpreters.get(vscode.workspace.getWorkspaceFolder(file));
  const result = await run(python.path, moduleArgs('distdev', 'inspect', '--json', file.fsPath), { timeoutMs: 60000 });
  if (result.code !== 0) {
    throw new Error((result.stderr || result.stdout).trim() || `distdev inspect exited with ${result.code}`);
  }
  return parseListing(result.stdout);
}

/** Start a replay of `file` stopping at `seq` (to the end when undefined). */
export async function startReplay(file: vscode.Uri, service: string, seq?: number): Promise<boolean> {
  return vscode.debug.startDebugging(vscode.workspace.getWorkspaceFolder(file), replayConfig(file.fsPath, service, seq));
}

export class JournalEditor implements vscode.CustomReadonlyEditorProvider {
  static readonly viewType = 'distdev.journal';

  constructor(private readonly interpreters: Interpreters) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  async resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): Promise<void> {
    panel.webview.options = { enableScripts: true };
    const nonce = crypto.randomBytes(16).toString('hex');
    let listing: JournalListing;
    try {
      listing = await inspectJournal(this.interpreters, document.uri);
    } catch (error) {
      panel.webview.html = `<!DOCTYPE html><html><body><h2>This journal cannot be read</h2>` +
        `<pre>${escapeHtml(error instanceof Error ? error.message : String(error))}</pre></body></html>`;
      return;
    }
    panel.webview.html = journalHtml(listing, document.uri.fsPath, nonce, panel.webview.cspSource);
    panel.webview.onDidReceiveMessage((message: { replayTo?: unknown }) => {
      if (typeof message.replayTo === 'number') void startReplay(document.uri, listing.service, message.replayTo);
    });
  }
}
