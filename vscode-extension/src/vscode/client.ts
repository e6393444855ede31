/** The language client for `python -m distdev.lsp`, started with the same interpreter as the debugger. */

import * as vscode from 'vscode';
import { LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';

import { moduleArgs } from '../core/interpreter';
import { SERVICE_GRAPH_REQUEST, ServiceGraph, withoutBuildOutput } from '../core/serviceGraph';
import { Interpreters } from './interpreters';

export class DistdevClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when the server is up (the service graph may have changed). */
  readonly onDidStart = this.changed.event;

  constructor(private readonly interpreters: Interpreters, private readonly log: vscode.OutputChannel) {}

  /** Start the server once; undefined (after telling the user why) if there is no interpreter. */
  start(): Promise<LanguageClient | undefined> {
    this.starting ??= this.launch();
    return this.starting;
  }

  private async launch(): Promise<LanguageClient | undefined> {
    let python;
    try {
      python = await this.interpreters.get();
    } catch (error) {
      this.starting = undefined; // try again on the next request
      const message = error instanceof Error ? error.message : String(error);
      this.log.appendLine(message);
      const choice = await vscode.window.showWarningMessage(message, 'Open Settings');
      if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'distdev.python');
      return undefined;
    }
    this.log.appendLine(`language server: ${python.path} -P -m distdev.lsp (distdev ${python.version}, from ${python.source})`);
    const server: ServerOptions = { command: python.path, args: moduleArgs('distdev.lsp') };
    const options: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file', language: 'python' }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher('**/*.py') },
      outputChannel: this.log,
    };
    const client = new LanguageClient('distdev', 'distdev language server', server, options);
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      // The client has logged the server's own output (a traceback, usually) to the channel.
      this.log.appendLine(`language server did not start: ${String(error)}`);
      void vscode.window.showErrorMessage(
        `distdev: the language server (${python.path} -m distdev.lsp) did not start; see the distdev output.`);
      return undefined;
    }
    this.changed.fire();
    return client;
  }

  /** The service graph of the workspace; no roots when the server cannot run. */
  async serviceGraph(): Promise<ServiceGraph> {
    const client = await this.start();
    if (!client) return { roots: [] };
    return withoutBuildOutput(await client.sendRequest<ServiceGraph>(SERVICE_GRAPH_REQUEST, {}));
  }

  dispose(): void {
    this.changed.dispose();
    void this.client?.stop();
  }
}
