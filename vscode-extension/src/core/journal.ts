/**
 * A journal as `distdev inspect --json` lists it, shown as an HTML table with a "Replay to here"
 * button on every event a replay can stop before; no `vscode` here.
 */

import { DEBUG_TYPE, DistdevLaunchConfig } from './launchConfig';

export interface JournalEvent {
  seq: number;
  kind: string;
  offset: number;
  summary: string;
  /** Whether a replay can stop before it (false for what a replay reads past: output, a loaded
   * file, a state digest); listings of older distdev versions leave it out. */
  boundary?: boolean;
}

export interface JournalListing {
  service: string;
  events: JournalEvent[];
  /** Why the tail could not be read, if it was torn. */
  torn: string | null;
}

/** Parse and check the JSON `distdev inspect --json` printed. */
export function parseListing(text: string): JournalListing {
  const data = JSON.parse(text) as Partial<JournalListing>;
  if (typeof data.service !== 'string' || !Array.isArray(data.events)) {
    throw new Error('distdev inspect --json printed something that is not a journal listing');
  }
  return { service: data.service, events: data.events, torn: data.torn ?? null };
}

/** The launch configuration that replays `journal` and stops at event `seq`. */
export function replayConfig(journal: string, service: string, seq?: number): DistdevLaunchConfig {
  const config: DistdevLaunchConfig = {
    type: DEBUG_TYPE, request: 'launch',
    name: seq === undefined ? `distdev: Replay ${service}` : `distdev: Replay ${service} to event ${seq}`,
    journal,
  };
  if (seq !== undefined) config.stopAtEvent = seq;
  return config;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) =>
    ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/**
 * The journal page. Scripts run only with `nonce`; a click posts `{replayTo: seq}`, which the
 * extension turns into a replay session.
 */
export function journalHtml(listing: JournalListing, file: string, nonce: string, cspSource: string): string {
  const rows = listing.events.map((e) => {
    const button = e.seq >= 1 && e.boundary !== false
      ? `<button data-seq="${e.seq}" title="Replay this journal and stop at event ${e.seq}">Replay to here</button>`
      : '';
    return `<tr><td class="seq">${e.seq}</td><td>${escapeHtml(e.kind)}</td>` +
      `<td class="summary">${escapeHtml(e.summary)}</td><td>${button}</td></tr>`;
  }).join('\n');
  const torn = listing.torn ? `<p class="torn">⚠ ${escapeHtml(listing.torn)}</p>` : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'unsafe-inline'; script-src 'nonce-${nonce}';">
<title>${escapeHtml(listing.service)}</title>
<style>
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: 2px 8px; border-bottom: 1px solid var(--vscode-panel-border); vertical-align: top; }
td.seq { text-align: right; font-variant-numeric: tabular-nums; }
td.summary { font-family: var(--vscode-editor-font-family); white-space: pre-wrap; word-break: break-all; }
.torn { color: var(--vscode-errorForeground); }
</style></head><body>
<h2>Journal of ${escapeHtml(listing.service)}</h2>
<p>${escapeHtml(file)} · ${listing.events.length} records (read-only)</p>
${torn}
<table><thead><tr><th>seq</th><th>kind</th><th>event</th><th></th></tr></thead>
<tbody>
${rows}
</tbody></table>
<script nonce="${nonce}">
const vscode = acquireVsCodeApi();
document.addEventListener('click', (event) => {
  const seq = event.target && event.target.dataset && event.target.dataset.seq;
  if (seq) vscode.postMessage({ replayTo: Number(seq) });
});
</script>
</body></html>
`;
}
