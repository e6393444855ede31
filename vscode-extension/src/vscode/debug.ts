/**
 * The `distdev` debugger's VS Code side: the configuration provider, the adapter factory
 * (`python -m distdev.dap_adapter`) and the DAP trace. The decisions live in ../core.
 */

import * as vscode from 'vscode';

import { resolveLaunch } from '../core/configResolver';
import { moduleArgs } from '../core/interpreter';
import { DapTraceWriter, traceFile } from '../core/trace';
import { Interpreters } from './interpreters';

export class ConfigurationProvider implements vscode.DebugConfigurationProvider {
  constructor(private readonly findRoot: (file: string) => Promise<string | undefined>) {}

  async resolveDebugConfiguration(
    folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration,
  ): Promise<vscode.DebugConfiguration | undefined> {
    const editor = vscode.window.activeTextEditor?.document.uri
      ?? activeCustomEditorUri();
    const resolution = await resolveLaunch(config, {
      activeFile: editor?.scheme === 'file' ? editor.fsPath : undefined,
      folder: folder?.uri.fsPath ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
      findRoot: this.findRoot,
    });
    if ('error' in resolution) {
      void vscode.window.showErrorMessage(resolution.error);
      return undefined; // undefined: VS Code starts nothing
    }
    return resolution.config;
  }
}

/** The file of the active custom editor tab (a journal), which is no text editor. */
function activeCustomEditorUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom ? input.uri : undefined;
}

export class AdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(private readonly interpreters: Interpreters, private readonly log: vscode.OutputChannel) {}

  async createDebugAdapterDescriptor(session: vscode.DebugSession): Promise<vscode.DebugAdapterDescriptor> {
    try {
      const python = await this.interpreters.get(session.workspaceFolder);
      this.log.appendLine(`debug adapter: ${python.path} -P -m distdev.dap_adapter (distdev ${python.version}, from ${python.source})`);
      const cwd = typeof session.configuration.cwd === 'string' ? session.configuration.cwd : undefined;
      return new vscode.DebugAdapterExecutable(python.path, moduleArgs('distdev.dap_adapter'), { cwd });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log.appendLine(message);
      // VS Code shows a thrown error's message to the user and starts nothing.
      throw new Error(message);
    }
  }
}

export class TraceFactory implements vscode.DebugAdapterTrackerFactory {
  createDebugAdapterTracker(session: vscode.DebugSession): vscode.DebugAdapterTracker | undefined {
    const setting = vscode.workspace.getConfiguration('distdev').get<string>('trace.dapFile', '');
    const file = traceFile(setting, process.env);
    if (!file) return undefined;
    const writer = new DapTraceWriter(file, session.id);
    return {
      onWillReceiveMessage: (message) => writer.write('toAdapter', message),
      onDidSendMessage: (message) => writer.write('fromAdapter', message),
    };
  }
}
