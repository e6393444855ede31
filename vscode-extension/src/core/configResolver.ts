/**
 * Filling in and checking a launch configuration before a session starts; no `vscode` here.
 *
 * F5 with no launch.json hands the provider an EMPTY configuration: if it is not filled in,
 * VS Code does nothing at all (no message, no session). So an empty configuration becomes
 * "debug the application whose service is in the active editor" (or "replay the journal in the
 * active editor"). A service file that is not the root is debugged through its root: launching a
 * nested service on its own would build the wrong application.
 */

import * as path from 'node:path';

import { DEBUG_TYPE, DistdevLaunchConfig } from './launchConfig';

export interface ResolveContext {
  /** The file in the active editor, if any. */
  activeFile?: string;
  /** The workspace folder the session runs in, if any. */
  folder?: string;
  /** The root service file whose service tree contains `file`, if one is known. */
  findRoot(file: string): Promise<string | undefined>;
}

export type Resolution = { config: DistdevLaunchConfig } | { error: string };

const NOTHING_TO_DEBUG =
  'distdev: open the application\'s root service (its .py file) or a journal (.cbor) and ' +
  'press F5 again, or add a "distdev: Debug application" configuration to .vscode/launch.json.';

function isEmpty(config: Record<string, unknown>): boolean {
  return !config.type && !config.request && !config.name;
}

async function fromActiveFile(ctx: ResolveContext): Promise<Resolution> {
  const file = ctx.activeFile;
  if (file && file.endsWith('.cbor')) {
    return { config: {
      type: DEBUG_TYPE, request: 'launch', name: `distdev: Replay ${path.basename(file)}`,
      journal: file,
    } };
  }
  if (file && file.endsWith('.py')) {
    const root = (await ctx.findRoot(file)) ?? file;
    return { config: {
      type: DEBUG_TYPE, request: 'launch', name: `distdev: Debug ${path.basename(root)}`, app: root,
    } };
  }
  return { error: NOTHING_TO_DEBUG };
}

/** The configuration to launch, or the message to show instead. */
export async function resolveLaunch(
  given: Record<string, unknown>, ctx: ResolveContext,
): Promise<Resolution> {
  let config: Record<string, unknown> = { ...given };
  if (isEmpty(config)) {
    const filled = await fromActiveFile(ctx);
    if ('error' in filled) return filled;
    config = { ...filled.config, ...config };
  }
  if (config.type !== DEBUG_TYPE) {
    return { error: `distdev: this configuration's type is "${String(config.type)}", not "distdev".` };
  }
  if (config.request !== 'launch') {
    return { error: `distdev: "request" must be "launch" (got "${String(config.request)}"); ` +
      'distdev starts the program itself, for an application or a journal.' };
  }
  const hasApp = typeof config.app === 'string' && config.app !== '';
  const hasJournal = typeof config.journal === 'string' && config.journal !== '';
  if (!hasApp && !hasJournal) {
    return { error: 'distdev: the launch configuration needs "app" (the root service\'s .py ' +
      'file) to debug an application, or "journal" (a journal.cbor) to replay one service.' };
  }
  if (hasApp && hasJournal) {
    return { error: 'distdev: give either "app" or "journal" in a launch configuration, not both.' };
  }
  if (!config.name) config.name = `distdev: ${path.basename(String(config.app ?? config.journal))}`;
  if (!config.cwd) {
    // Relative paths and the .distdev output folder are the workspace's, as in a terminal.
    config.cwd = ctx.folder ?? path.dirname(String(config.app ?? config.journal));
  }
  return { config: config as DistdevLaunchConfig };
}
