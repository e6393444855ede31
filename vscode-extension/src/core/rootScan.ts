/**
 * Finding an application's root without the language server: follow `import_service("...")`
 * string literals backwards from a file to a file nothing imports. The language server's graph
 * is preferred (it knows service_name= and more); this keeps F5 right while the server is still
 * starting or cannot run.
 */

import * as path from 'node:path';

const IMPORT_SERVICE = /import_service\(\s*(?:path\s*=\s*)?["']([^"']+\.py)["']/g;

/** The files `source` (the text of `file`) imports as services, as absolute paths. */
export function importedServices(file: string, source: string): string[] {
  return [...source.matchAll(IMPORT_SERVICE)].map((m) => path.resolve(path.dirname(file), m[1]));
}

/**
 * The root of `file`'s application among `files` (path → text): walk to an importer until none
 * is left. A file imported by nothing is its own root; a cycle stops where it closes.
 */
export function rootByScan(file: string, files: Map<string, string>): string {
  const importers = new Map<string, string[]>();
  for (const [candidate, text] of files) {
    for (const target of importedServices(candidate, text)) {
      if (!importers.has(target)) importers.set(target, []);
      importers.get(target)!.push(candidate);
    }
  }
  let current = path.resolve(file);
  const seen = new Set([current]);
  for (;;) {
    const next = (importers.get(current) ?? []).find((f) => !seen.has(f));
    if (!next) return current;
    seen.add(next);
    current = next;
  }
}
