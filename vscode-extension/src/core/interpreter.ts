/**
 * Finding the Python interpreter that has distdev installed; no `vscode` here.
 *
 * Order: the `distdev.python` setting; else each workspace folder's `.venv`; else `python3`, then
 * `python`, on PATH. The Python extension may be absent, so distdev does not ask it. A candidate
 * counts only if it imports distdev's debug adapter and language server; when none does, the error
 * names every candidate and why it was refused.
 */

import * as os from 'node:os';
import * as path from 'node:path';

export interface Candidate {
  /** What to run (a path, or a bare name resolved on PATH). */
  command: string;
  /** Where it came from, for messages. */
  source: string;
}

export interface Interpreter {
  path: string;
  version: string;
  source: string;
}

export interface ProbeResult {
  /** distdev's version, when it imported. */
  version?: string;
  /** Why the candidate cannot be used. */
  problem?: string;
}

/** The side effects discovery needs, injected so tests can describe a machine. */
export interface InterpreterSystem {
  platform: NodeJS.Platform;
  pathEnv: string;
  isFile(file: string): boolean;
  /** Run the candidate on `PROBE_SCRIPT`. */
  probe(python: string): Promise<ProbeResult>;
}

export interface DiscoveryInput {
  /** The `distdev.python` setting ('' when unset). */
  setting: string;
  /** Workspace folder paths, the session's own first. */
  folders: string[];
}

/**
 * The interpreter arguments that run `module`. `-P` keeps the working folder off `sys.path`:
 * an application file named like a standard-library module (calendar.py, secrets.py) would
 * otherwise be imported by distdev itself in place of the real one.
 */
export function moduleArgs(module: string, ...args: string[]): string[] {
  return [SAFE_PATH, '-m', module, ...args];
}

export const SAFE_PATH = '-P';

/** Prints `{"version": ...}` or `{"problem": ...}`: imports exactly what the extension runs. */
export const PROBE_SCRIPT = [
  'import json',
  'try:',
  '    import distdev, distdev.dap_adapter, distdev.lsp',
  '    print(json.dumps({"version": distdev.__version__}))',
  'except Exception as e:',
  '    print(json.dumps({"problem": "%s: %s" % (type(e).__name__, e)}))',
].join('\n');

export class InterpreterNotFound extends Error {}

function expand(setting: string, folder: string | undefined): string {
  let value = setting.trim();
  if (folder) value = value.replace(/\$\{workspaceFolder\}/g, folder);
  if (value === '~' || value.startsWith('~/')) value = path.join(os.homedir(), value.slice(1));
  if (!path.isAbsolute(value) && value.includes('/') && folder) value = path.resolve(folder, value);
  return value;
}

function venvPython(folder: string, platform: NodeJS.Platform): string {
  return platform === 'win32'
    ? path.join(folder, '.venv', 'Scripts', 'python.exe')
    : path.join(folder, '.venv', 'bin', 'python');
}

/** The candidates, in the order they are tried. */
export function candidates(input: DiscoveryInput, platform: NodeJS.Platform): Candidate[] {
  if (input.setting.trim()) {
    return [{ command: expand(input.setting, input.folders[0]), source: 'the distdev.python setting' }];
  }
  const found: Candidate[] = input.folders.map((folder) => ({
    command: venvPython(folder, platform), source: `the workspace's .venv (${folder})`,
  }));
  for (const name of platform === 'win32' ? ['python', 'py'] : ['python3', 'python']) {
    found.push({ command: name, source: 'PATH' });
  }
  return found;
}

/** `name` resolved on PATH, or undefined. */
export function which(name: string, system: InterpreterSystem): string | undefined {
  if (name.includes('/') || name.includes('\\')) return system.isFile(name) ? name : undefined;
  const extensions = system.platform === 'win32' ? ['.exe', ''] : [''];
  for (const dir of system.pathEnv.split(system.platform === 'win32' ? ';' : ':')) {
    if (!dir) continue;
    for (const ext of extensions) {
      const file = path.join(dir, name + ext);
      if (system.isFile(file)) return file;
    }
  }
  return undefined;
}

/** The first candidate that has distdev, or an `InterpreterNotFound` naming what was tried. */
export async function findInterpreter(
  input: DiscoveryInput, system: InterpreterSystem,
): Promise<Interpreter> {
  const tried: string[] = [];
  for (const candidate of candidates(input, system.platform)) {
    const resolved = which(candidate.command, system);
    if (resolved === undefined) {
      tried.push(`${candidate.command} (${candidate.source}): not found`);
      continue;
    }
    const result = await system.probe(resolved);
    if (result.version !== undefined) {
      return { path: resolved, version: result.version, source: candidate.source };
    }
    tried.push(`${resolved} (${candidate.source}): ${result.problem ?? 'distdev is not importable'}`);
  }
  const fix = input.setting.trim()
    ? 'Install distdev into that interpreter (pip install distdev) or change the ' +
      '"distdev.python" setting.'
    : 'Install distdev into one of them (pip install distdev), or set "distdev.python" to an ' +
      'interpreter that has it.';
  throw new InterpreterNotFound(
    `distdev: no Python interpreter with distdev installed was found. Tried: ${tried.join('; ')}. ${fix}`);
}
