// Helpers the DebugClient tests share (not a test file: `node --test` runs *.test.mjs only).

import fs from 'node:fs';

export const TIMEOUT = 20000;

/** The 1-based line of `# @name` in `file`. */
export function marker(file, name) {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`#\\s*@${escaped}(?![\\w-])`);
  const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
  const index = lines.findIndex((line) => pattern.test(line));
  if (index < 0) throw new Error(`no marker @${name} in ${file}`);
  return index + 1;
}

/** `promise`, or a rejection naming `what` after `ms` (DebugClient's requests never time out). */
export function within(promise, what, ms = TIMEOUT) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
