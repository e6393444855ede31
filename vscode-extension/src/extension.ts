/** Activation: create the parts and register them with VS Code. Nothing else happens here. */

import * as vscode from 'vscode';

import { DEBUG_TYPE } from './core/launchConfig';
import { DistdevClient } from './vscode/client';
import { Commands } from './vscode/commands';
import { AdapterFactory, ConfigurationProvider, TraceFactory } from './vscode/debug';
import { Interpreters } from './vscode/interpreters';
import { JournalEditor } from './vscode/journalEditor';
import { findRoot } from './vscode/roots';
import { ServicesView } from './vscode/servicesView';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('distdev');
  const interpreters = new Interpreters();
  const client = new DistdevClient(interpreters, log);
  const view = new ServicesView(client);
  const commands = new Commands(interpreters, client, view, log);

  context.subscriptions.push(
    log, interpreters, client,
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new ConfigurationProvider((file) => findRoot(client, file))),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new AdapterFactory(interpreters, log)),
    vscode.debug.registerDebugAdapterTrackerFactory(DEBUG_TYPE, new TraceFactory()),
    vscode.window.registerTreeDataProvider('distdev.services', view),
    client.onDidStart(() => view.refresh()),
    vscode.window.registerCustomEditorProvider(JournalEditor.viewType, new JournalEditor(interpreters),
      { supportsMultipleEditorsPerDocument: true }),
    vscode.commands.registerCommand('distdev.build', () => commands.build()),
    vscode.commands.registerCommand('distdev.replayJournal', () => commands.replayJournal()),
    vscode.commands.registerCommand('distdev.replayToEvent', (uri: vscode.Uri) => commands.replayToEvent(uri)),
    vscode.commands.registerCommand('distdev.showServiceGraph', () => commands.showServiceGraph()),
    vscode.commands.registerCommand('distdev.refreshServices', () => view.refresh()),
  );
  void client.start();
}

export function deactivate(): void {
  // Everything is in context.subscriptions; VS Code disposes it.
}
