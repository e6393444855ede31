/** The "distdev Services" view: the service tree; clicking a service opens its file. */

import * as vscode from 'vscode';

import {
  ServiceExport, ServiceNode, isResource, serviceDescription, serviceLabel, serviceTooltip,
} from '../core/serviceGraph';

/** The icon of a resource node, by kind (a service's is `server-process`). */
const RESOURCE_ICONS: Record<string, string> = { sql: 'database', kv: 'symbol-key', secret: 'lock' };
import { DistdevClient } from './client';

type Item = { service: ServiceNode } | { service: ServiceNode; export: ServiceExport };

export class ServicesView implements vscode.TreeDataProvider<Item> {
  private readonly changed = new vscode.EventEmitter<Item | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private readonly client: DistdevClient) {}

  refresh(): void {
    this.changed.fire(undefined);
  }

  async getChildren(parent?: Item): Promise<Item[]> {
    if (!parent) {
      try {
        return (await this.client.serviceGraph()).roots.map((service) => ({ service }));
      } catch (error) {
        void vscode.window.showErrorMessage(`distdev: the service graph could not be read: ${String(error)}`);
        return [];
      }
    }
    if ('export' in parent) return [];
    return [
      ...parent.service.children.map((service) => ({ service })),
      ...parent.service.exports.map((e) => ({ service: parent.service, export: e })),
    ];
  }

  getTreeItem(item: Item): vscode.TreeItem {
    const file = vscode.Uri.file(item.service.file);
    if ('export' in item) {
      const tree = new vscode.TreeItem(item.export.name, vscode.TreeItemCollapsibleState.None);
      tree.description = item.export.signature;
      tree.iconPath = new vscode.ThemeIcon('symbol-function');
      const at = new vscode.Range(item.export.line, 0, item.export.line, 0);
      tree.command = { command: 'vscode.open', title: 'Open', arguments: [file, { selection: at }] };
      return tree;
    }
    const node = item.service;
    // The tree of services shows at once; a service's exports wait for a click.
    const state = node.children.length > 0 ? vscode.TreeItemCollapsibleState.Expanded
      : node.exports.length > 0 ? vscode.TreeItemCollapsibleState.Collapsed
        : vscode.TreeItemCollapsibleState.None;
    const tree = new vscode.TreeItem(serviceLabel(node), state);
    tree.id = node.id;
    const base = vscode.workspace.getWorkspaceFolder(file)?.uri.fsPath;
    tree.description = serviceDescription(node, base);
    tree.tooltip = serviceTooltip(node);
    tree.iconPath = new vscode.ThemeIcon(node.error ? 'warning'
      : isResource(node) ? (RESOURCE_ICONS[node.kind ?? ''] ?? 'database') : 'server-process');
    tree.resourceUri = file;
    tree.command = { command: 'vscode.open', title: 'Open Service', arguments: [file] };
    return tree;
  }
}
