/** The interpreter for a workspace folder, from the settings, cached until they change. */

import * as vscode from 'vscode';

import { findInterpreter, Interpreter } from '../core/interpreter';
import { nodeSystem } from '../core/nodeSystem';

export class Interpreters implements vscode.Disposable {
  private readonly cache = new Map<string, Promise<Interpreter>>();
  private readonly listener: vscode.Disposable;

  constructor() {
    this.listener = vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('distdev.python')) this.cache.clear();
    });
  }

  /** The interpreter for `folder` (or the first workspace folder); rejects with a message naming what was tried. */
  get(folder?: vscode.WorkspaceFolder): Promise<Interpreter> {
    const chosen = folder ?? vscode.workspace.workspaceFolders?.[0];
    const setting = vscode.workspace.getConfiguration('distdev', chosen?.uri).get<string>('python', '');
    const folders = [chosen, ...(vscode.workspace.workspaceFolders ?? [])]
      .filter((f): f is vscode.WorkspaceFolder => f !== undefined)
      .map((f) => f.uri.fsPath)
      .filter((f, i, all) => all.indexOf(f) === i);
    const key = JSON.stringify([setting, folders]);
    let found = this.cache.get(key);
    if (!found) {
      found = findInterpreter({ setting, folders }, nodeSystem());
      // A failure is not cached: the user may install distdev and try again.
      found.catch(() => this.cache.delete(key));
      this.cache.set(key, found);
    }
    return found;
  }

  dispose(): void {
    this.listener.dispose();
  }
}
