/**
 * Appending every DAP message of a distdev session to a file, one JSON object a line.
 *
 * The file is evidence of exactly what VS Code and the adapter said (bug reports, end-to-end
 * tests). Writes are synchronous so lines keep the order in which messages passed.
 */

import * as fs from 'node:fs';

export type Direction = 'toAdapter' | 'fromAdapter';

export interface TraceLine {
  time: number;
  session: string;
  direction: Direction;
  message: unknown;
}

/** The trace file: the setting, else the DISTDEV_DAP_TRACE environment variable, else none. */
export function traceFile(setting: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const chosen = (setting ?? '').trim() || (env.DISTDEV_DAP_TRACE ?? '').trim();
  return chosen || undefined;
}

export class DapTraceWriter {
  constructor(
    private readonly file: string,
    private readonly session: string,
    private readonly append: (file: string, text: string) => void = fs.appendFileSync,
  ) {}

  write(direction: Direction, message: unknown): void {
    const line: TraceLine = { time: Date.now(), session: this.session, direction, message };
    try {
      this.append(this.file, JSON.stringify(line) + '\n');
    } catch {
      // A trace that cannot be written must never break the debug session itself.
    }
  }
}
