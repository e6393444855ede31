/**
 * Finding an application's root without the language server: follow `import_service("...")`
 * string literals backwards from a file to a file nothing imports. The language server's graph
 * is preferred (it knows service_name= and more); this keeps F5 right while the server is still
 * starting or cannot run.
 */

import * as path from 'node:path';

const IMPORT_SERVICE = /import_service\(\s*(?:path\s*=\s*)?["']([^"']*)["']/g;

/** Why a literal names no service file: the kinds of distdev.rules.ServicePathError. */
export type ServicePathError = 'empty' | 'absolute' | 'outside' | 'not-py';

/**
 * The file `import_service(literal)` names from the service file `importer`, by the rule of
 * distdev.rules.resolve_service_path: both paths posix and relative to the application folder,
 * `literal` relative to the importer's folder and staying inside the application folder.
 * tests/fixtures/service_paths.json keeps the two in step.
 */
export function resolveServicePath(
  importer: string, literal: string,
): { path: string } | { error: ServicePathError } {
  if (!literal) return { error: 'empty' };
  if (literal.startsWith('/')) return { error: 'absolute' };
  // posixpath.normpath drops a trailing slash; path.posix.normalize keeps it.
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(importer), literal));
  const rel = joined.replace(/(.)\/+$/, '$1');
  if (rel === '..' || rel.startsWith('../')) return { error: 'outside' };
  if (!rel.endsWith('.py')) return { error: 'not-py' };
  return { path: rel };
}

/**
 * The files `source` (the text of `file`) imports as services, as absolute paths. Which
 * application folder holds `file` is not known here, so the rule is applied from the file
 * system's root: a literal that leaves the application is still followed.
 */
export function importedServices(file: string, source: string): string[] {
  const absolute = path.resolve(file);
  const { root } = path.parse(absolute);
  const importer = path.relative(root, absolute).split(path.sep).join('/');
  return [...source.matchAll(IMPORT_SERVICE)].flatMap((m) => {
    const named = resolveServicePath(importer, m[1]);
    return 'path' in named ? [path.join(root, ...named.path.split('/'))] : [];
  });
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
