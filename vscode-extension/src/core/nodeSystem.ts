/** The real machine behind `InterpreterSystem`, and running distdev's command line. */

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';

import { InterpreterSystem, PROBE_SCRIPT, ProbeResult, SAFE_PATH } from './interpreter';

const PROBE_TIMEOUT_MS = 20000;

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `command args` to its end, collecting output (never rejects; a spawn failure is code null). */
export function run(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}):
Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, {
      cwd: options.cwd, timeout: options.timeoutMs ?? 0, maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, PYTHONIOENCODING: 'utf-8' },
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr: stderr || (error && code === null ? String(error.message) : '') });
    });
  });
}

export async function probe(python: string): Promise<ProbeResult> {
  const result = await run(python, [SAFE_PATH, '-c', PROBE_SCRIPT], { timeoutMs: PROBE_TIMEOUT_MS });
  const last = result.stdout.trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(last) as ProbeResult;
    if (parsed.version !== undefined || parsed.problem !== undefined) return parsed;
  } catch {
    // not JSON: the interpreter did not run the probe; explained below
  }
  const why = (result.stderr.trim() || result.stdout.trim()).split('\n').pop();
  return { problem: `did not run (${why || `exit code ${result.code}`})` };
}

export function nodeSystem(): InterpreterSystem {
  return {
    platform: process.platform,
    pathEnv: process.env.PATH ?? '',
    isFile: (file) => {
      try {
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
    probe,
  };
}
