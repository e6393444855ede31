/**
 * The `distdev` launch configuration: the options `python -m distdev.dap_adapter` accepts in a
 * `launch` request (see dap_adapter/_config.py), as TypeScript sees them.
 *
 * `LAUNCH_OPTION_TYPES` restates the interface as data. The compiler keeps the two in step (a
 * missing, extra or differently typed key is a type error) and a unit test keeps the data in step
 * with the launch.json schema in package.json, so the schema users see cannot drift from the code.
 */

/** What the user writes in launch.json, besides `type`, `request` and `name`. */
export interface DistdevLaunchOptions {
  /** The root service's .py file: build and debug the whole application. */
  app?: string;
  /** A service's journal.cbor: replay it under the debugger. */
  journal?: string;
  /** Replay only: the event (sequence number) to stop at. */
  stopAtEvent?: number;
  /** Application launch only: stop on the root service's first line. */
  stopOnEntry?: boolean;
  /** Environment of the debugged process; `null` removes a variable. */
  env?: Record<string, string | null>;
  /** Folder that relative paths start from. */
  cwd?: string;
  /** Application launch: the HTTP ingress port (0: any free port). */
  port?: number;
  /** Application launch: reload a service whose files change, keeping its state. */
  watch?: boolean;
}

export interface DistdevLaunchConfig extends DistdevLaunchOptions {
  type: 'distdev';
  request: 'launch';
  name: string;
  [other: string]: unknown;
}

export type JsonType = 'string' | 'integer' | 'boolean' | 'object';

type JsonTypeOf<T> = T extends string ? 'string'
  : T extends number ? 'integer'
  : T extends boolean ? 'boolean'
  : 'object';

type OptionTypes = { readonly [K in keyof Required<DistdevLaunchOptions>]:
  JsonTypeOf<Required<DistdevLaunchOptions>[K]> };

/** Every launch option with its JSON schema type; the compiler checks it against the interface. */
export const LAUNCH_OPTION_TYPES = {
  app: 'string',
  journal: 'string',
  stopAtEvent: 'integer',
  stopOnEntry: 'boolean',
  env: 'object',
  cwd: 'string',
  port: 'integer',
  watch: 'boolean',
} as const satisfies OptionTypes;

export const DEBUG_TYPE = 'distdev';
