// Run a real PowerX host simulator from a test (node:test, vitest, any runner): the
// DevKit's `powerx host start --mock`, with a throwaway login and state.
//
//   import { LocalSimulator } from "@powerx/plugin/testing";
//
//   test("it greets the tenant", async (t) => {
//     const sim = await LocalSimulator.start(["."]);
//     t.after(() => sim.stop());                    // vitest: afterAll(() => sim.stop())
//     const response = await sim.fetch("/plugins/com.example.my-plugin/");
//     assert.equal(response.status, 200);
//   });

export interface LocalSimulatorOptions {
  /** Also hot-reload on save (`--watch`); `start` resolves once every watcher is armed. */
  watch?: boolean;
  /** More arguments for `powerx host start`, e.g. `["--image", "3.0.0"]`. */
  args?: string[];
  /** The environment to start from (default: `process.env`); its POWERX_* and PX_* are dropped. */
  env?: Record<string, string | undefined>;
  /** Where the login, state and output go (default: a new temporary folder, removed by `stop()`). */
  workdir?: string;
  /** The command that runs powerx (default: POWERX_CLI split on spaces, else `powerx` on PATH). */
  powerx?: string[];
  /** How long the simulator may take to come up, in ms (default 60000). */
  startTimeoutMs?: number;
}

/** One plugin in `status()`: its generation, state, and what its dev loop reports. */
export interface PluginStatus {
  id: string;
  name: string;
  version: string;
  runtime: string;
  /** "running", "stale" (its last reload failed), "failed", "crash_loop", ... */
  state: string;
  generation: number | null;
  digest: string | null;
  url: string;
  watch: {
    armed: boolean;
    reload_pending: boolean;
    changed: string[];
    held_requests: number;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface SimulatorStatus {
  host: { url: string; image: string; api_version: string; tenant: string; [key: string]: unknown };
  plugins: PluginStatus[];
}

export declare class LocalSimulator {
  /** Log in with a mock credential, start the simulator over `plugins` (folders), resolve once it serves. */
  static start(plugins: string[], options?: LocalSimulatorOptions): Promise<LocalSimulator>;
  /** Where it listens, e.g. "http://127.0.0.1:41234". */
  readonly url: string;
  /** Its login, state and output (simulator.out, simulator.err) folder. */
  readonly workdir: string;
  /** The environment its `powerx` commands run with. */
  readonly env: Record<string, string>;
  /** A request to the simulator; `path` is everything after its address. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** The mock credential's bearer token. */
  token(): string;
  /** `{ authorization: "Bearer ..." }`, for /internal/debug/... */
  debugHeaders(): Record<string, string>;
  status(): Promise<SimulatorStatus>;
  /** `plugin`'s entry in the status (undefined when it is not mounted). */
  pluginStatus(plugin: string): Promise<PluginStatus | undefined>;
  /** Until the watcher of `plugin` (undefined: of every plugin) is armed: a save from then on reloads. */
  waitArmed(plugin?: string, timeoutMs?: number): Promise<void>;
  /** Until generation `generation` (or a later one) of `plugin` serves and no reload is pending. */
  waitGeneration(plugin: string, generation: number, timeoutMs?: number): Promise<PluginStatus>;
  /** Run a `powerx` command against this simulator's login and state. */
  powerx(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** What the simulator printed so far: its stdout (reload lines), then its stderr. */
  output(): string;
  /** Stop it (SIGTERM, then SIGKILL after 20 s) and remove its temporary folder. */
  stop(): Promise<void>;
}

/** A wait that gave up: what it waited for, for how long, and the last answer it saw. */
export declare class WaitTimeout extends Error {
  readonly what: string;
  readonly timeoutMs: number;
  readonly last: unknown;
}

/**
 * Call `check` until it returns something truthy and return that; after `timeoutMs`, throw
 * a `WaitTimeout` naming `options.what` (default: the check's name) and the last answer.
 */
export declare function waitUntil<T>(
  check: () => T | Promise<T>,
  timeoutMs?: number,
  intervalMs?: number,
  options?: { what?: string },
): Promise<T>;
