/** The palette commands: Build, Replay Journal…, Show Service Graph. */

import * as path from 'node:path';

import * as vscode from 'vscode';

import { moduleArgs } from '../core/interpreter';
import { run } from '../core/nodeSystem';
import { rootContaining } from '../core/serviceGraph';
import { DistdevClient } from './client';
import { Interpreters } from './interpreters';
import { inspectJournal, startReplay } from './journalEditor';
import { ServicesView } from './servicesView';

export class Commands {
  constructor(
    private readonly interpreters: Interpreters,
    private readonly client: DistdevClient,
    private readonly view: ServicesView,
    private readonly log: vscode.OutputChannel,
  ) {}

  /** The application to build: the active file's root, else one picked from the workspace's roots. */
  private async pickApp(): Promise<string | undefined> {
    const graph = await this.client.serviceGraph();
    const active = vscode.window.activeTextEditor?.document.uri;
    const own = active?.scheme === 'file' ? rootContaining(graph, active.fsPath) : undefined;
    if (own) return own;
    if (graph.roots.length === 1) return graph.roots[0].file;
    if (!graph.roots.length) {
      void vscode.window.showErrorMessage('distdev: no application in this workspace: a root service is a .py file that calls import_service().');
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(
      graph.roots.map((r) => ({ label: vscode.workspace.asRelativePath(r.file), description: r.id, file: r.file })),
      { placeHolder: 'Which application to build?' });
    return picked?.file;
  }

  async build(): Promise<void> {
    const app = await this.pickApp();
    if (!app) return;
    const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(app));
    const python = await this.reportFailure(this.interpreters.get(folder));
    if (!python) return;
    const cwd = folder?.uri.fsPath ?? path.dirname(app);
    this.log.appendLine(`$ ${python.path} -m distdev build ${app}   (in ${cwd})`);
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `distdev: building ${path.basename(app)}` },
      () => run(python.path, moduleArgs('distdev', 'build', app), { cwd }));
    this.log.append(result.stdout + result.stderr);
    if (result.code === 0) {
      void vscode.window.showInformationMessage(`distdev: built ${path.basename(app)} (details in the distdev output)`);
      this.view.refresh();
    } else {
      this.log.show(true);
      void vscode.window.showErrorMessage(`distdev: the build of ${path.basename(app)} failed; see the distdev output.`);
    }
  }

  async replayJournal(): Promise<void> {
    const found = await vscode.workspace.findFiles('**/*.cbor', '**/node_modules/**', 500);
    if (!found.length) {
      void vscode.window.showErrorMessage('distdev: no journal (.cbor) in this workspace: run "distdev: Build" first.');
      return;
    }
    const journal = await vscode.window.showQuickPick(
      found.map((uri) => ({ label: vscode.workspace.asRelativePath(uri), uri }))
        .sort((a, b) => a.label.localeCompare(b.label)),
      { placeHolder: 'Which journal to replay?' });
    if (!journal) return;
    await this.replayToEvent(journal.uri);
  }

  /** Pick an event of `journal` and replay to it. */
  async replayToEvent(journal: vscode.Uri): Promise<void> {
    const listing = await this.reportFailure(inspectJournal(this.interpreters, journal));
    if (!listing) return;
    const events = listing.events.filter((e) => e.seq >= 1);
    const picked = await vscode.window.showQuickPick([
      { label: 'Replay to the end', seq: undefined as number | undefined, description: '' },
      ...events.map((e) => ({ label: `${e.seq}  ${e.kind}`, description: e.summary, seq: e.seq as number | undefined })),
    ], { placeHolder: `Stop ${listing.service}'s replay at which event?`, matchOnDescription: true });
    if (!picked) return;
    await startReplay(journal, listing.service, picked.seq ?? (events.length ? events[events.length - 1].seq : undefined));
  }

  async showServiceGraph(): Promise<void> {
    this.view.refresh();
    await vscode.commands.executeCommand('distdev.services.focus');
  }

  private async reportFailure<T>(work: Promise<T>): Promise<T | undefined> {
    try {
      return await work;
    } catch (error) {
      void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
      return undefined;
    }
  }
}
