// Waiting for what a step checks: the e2e driver's helpers, kept apart so that
// harness.test.mjs can show they wait for the page (and the DAP trace), never for time.
//
// Every check the e2e makes is of something VS Code shows or said: the Call Stack rows, the
// active tab, the cursor line, the DAP messages its tracker wrote. VS Code does much of it
// lazily — after a stop it asks for the top frame, and for the rest about 420 ms later, or when
// the Call Stack view asks — so each wait polls, bounded, until the page and the trace both
// hold what will be asserted, and only then returns it.

import fs from 'node:fs';

export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `check` until it returns a truthy value; fail naming `what` after `ms`. */
export async function until(what, check, ms = 20000, every = 200) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms${last ? ` (${last.message})` : ''}`);
    await delay(every);
  }
}

// -- the DAP trace ------------------------------------------------------------------------------

/** DAP messages written so far by the extension's tracker (one JSON object a line). */
export function readTrace(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

export const eventsIn = (trace, name) => trace.filter((l) => l.direction === 'fromAdapter'
  && l.message.type === 'event' && l.message.event === name);

/**
 * The frames VS Code was told after the last stop, merged by position: it asks for the top
 * frame first and for the rest later, in separate stackTrace requests.
 */
export function framesSinceLastStop(trace) {
  let stop = -1;
  trace.forEach((line, i) => {
    if (line.direction === 'fromAdapter' && line.message.event === 'stopped') stop = i;
  });
  const starts = new Map();
  const frames = new Map();
  for (const line of trace.slice(stop + 1)) {
    const m = line.message;
    if (line.direction === 'toAdapter' && m.command === 'stackTrace') {
      starts.set(m.seq, m.arguments.startFrame || 0);
    } else if (m.type === 'response' && m.command === 'stackTrace' && m.success && starts.has(m.request_seq)) {
      m.body.stackFrames.forEach((frame, i) => {
        const at = starts.get(m.request_seq) + i;
        if (!frames.has(at)) frames.set(at, frame);
      });
    }
  }
  return [...frames.keys()].sort((a, b) => a - b).map((k) => frames.get(k));
}

// -- the page -----------------------------------------------------------------------------------

/** The frames the Call Stack view shows, top first (thread rows left out). */
export async function callStackFrames(page) {
  return page.evaluate(() => [...document.querySelectorAll('.debug-call-stack .monaco-list-row')]
    .filter((row) => row.querySelector('.stack-frame'))
    .map((row) => row.textContent.replace(/\s+/g, ' ').trim()));
}

/**
 * The Call Stack once its top rows match `patterns` (top first) on the page, and the DAP trace
 * shows VS Code was told at least that many frames since the last stop. Meanwhile it acts as a
 * user would: a stopped thread listed collapsed is expanded (its twistie), and "Load More Stack
 * Frames" is clicked when the view has fewer frames than wanted.
 */
export async function waitForCallStack(page, { what, patterns, traceFile, ms = 15000 }) {
  return until(what, async () => {
    const rows = await callStackFrames(page);
    const shown = rows.length >= patterns.length && patterns.every((p, i) => p.test(rows[i]));
    const told = framesSinceLastStop(readTrace(traceFile)).length >= patterns.length;
    if (shown && told) return rows;
    if (!rows.length) {
      const stopped = page.locator('.debug-call-stack .monaco-list-row', { hasText: /Paused on (breakpoint|step)/i });
      if (await stopped.count()) await stopped.first().locator('.monaco-tl-twistie').click({ timeout: 2000 });
    } else if (rows.length < patterns.length) {
      const more = page.locator('.debug-call-stack .load-all');
      if (await more.count()) await more.first().click({ timeout: 2000 });
    }
    return false;
  }, ms, 200);
}

/** The active editor tab's file name. */
export async function activeTab(page) {
  return page.evaluate(() => {
    const tab = document.querySelector('.editor-group-container.active .tab.active')
      || document.querySelector('.tab.active');
    return tab ? tab.getAttribute('data-resource-name') : null;
  });
}

/** The cursor's line and column, as the status bar shows them. */
export async function cursorLine(page) {
  const text = await page.evaluate(() => {
    const item = [...document.querySelectorAll('.statusbar-item')]
      .find((el) => /Ln \d+, Col \d+/.test(el.textContent || ''));
    return item ? item.textContent : null;
  });
  const match = /Ln (\d+), Col (\d+)/.exec(text || '');
  return match ? { line: Number(match[1]), col: Number(match[2]) } : null;
}

/** The cursor once the status bar shows it on `line` of the active tab `file`. */
export async function waitForCursor(page, { what, file, line, ms = 10000 }) {
  return until(what, async () => {
    if ((await activeTab(page)) !== file) return false;
    const at = await cursorLine(page);
    return at && at.line === line ? at : false;
  }, ms, 200);
}
