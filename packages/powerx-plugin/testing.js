'use strict';
// Run a real PowerX host simulator from a test (node:test, vitest, any runner), isolated
// from your own login and state, as the DevKit's `powerx.testing.LocalSimulator` does for
// pytest:
//
//   const sim = await LocalSimulator.start(["."]);       // `powerx host start --mock`
//   const response = await sim.fetch("/plugins/com.example.my-plugin/");
//   await sim.stop();
//
// It runs the `powerx` CLI (the DevKit: `pip install powerx-devkit`, or POWERX_CLI) with a
// throwaway credential and state folder (POWERX_CONFIG_HOME, POWERX_STATE_DIR), logs in
// with `powerx login --mock`, starts `powerx host start --mock --port 0 PLUGIN...` and
// returns once the simulator has written the host file with its URL. Nothing here sleeps
// for a guessed time: every wait polls a state the simulator reports.

const { execFile, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const POLL_MS = 20;
const STOP_GRACE_MS = 20000;
const live = new Set();

// A test that forgets stop() must not leave a simulator behind when its process exits.
process.on('exit', () => {
  for (const sim of live) sim._kill('SIGTERM');
});

/** A wait that gave up: what it waited for, for how long, and the last answer it saw. */
class WaitTimeout extends Error {
  constructor(what, timeoutMs, last) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}; last value seen: ${shown(last)}`);
    this.name = 'WaitTimeout';
    this.what = what;
    this.timeoutMs = timeoutMs;
    this.last = last;
  }
}

function shown(value) {
  let text;
  try {
    text = value === undefined ? 'undefined' : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text.length > 2000 ? `${text.slice(0, 1000)} ... ${text.slice(-1000)}` : text;
}

/**
 * Call `check` until it returns something truthy, and return that; after `timeoutMs`,
 * throw a `WaitTimeout` naming `what` was awaited and the last answer (as Python's
 * `powerx.testing.wait_until` raises), so a test that times out says what it saw.
 * @template T
 * @param {() => T | Promise<T>} check
 * @param {number} [timeoutMs]
 * @param {number} [intervalMs]
 * @param {{ what?: string }} [options]
 * @returns {Promise<T>}
 */
async function waitUntil(check, timeoutMs = 10000, intervalMs = POLL_MS, options = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new WaitTimeout(options.what || check.name || String(check), timeoutMs, value);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The command that runs `powerx`: `override`, else POWERX_CLI (split on spaces), else PATH's. */
function powerxCommand(override) {
  if (override && override.length) return override;
  const fromEnv = (process.env.POWERX_CLI || '').trim();
  return fromEnv ? fromEnv.split(/\s+/) : ['powerx'];
}

/** `env` without the caller's own POWERX_* and PX_* settings (its login, its state). */
function ownEnv(env, workdir) {
  const result = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !name.startsWith('POWERX_') && !name.startsWith('PX_')) {
      result[name] = value;
    }
  }
  return Object.assign(result, {
    POWERX_CONFIG_HOME: path.join(workdir, 'config-home'),
    POWERX_STATE_DIR: path.join(workdir, 'state'),
    NO_COLOR: '1',
    COLUMNS: '200',
  });
}

function notInstalled(command) {
  return new Error(
    `powerx could not be run (${command.join(' ')}): install the PowerX DevKit ` +
      '(`pip install powerx-devkit`, which puts `powerx` on PATH) or set POWERX_CLI to ' +
      'the command that runs it, e.g. POWERX_CLI=/path/to/.venv/bin/powerx');
}

function readIfThere(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

class LocalSimulator {
  /**
   * Start a simulator serving `plugins` (folders) and resolve once it answers.
   * @param {string[]} plugins
   * @param {import("./testing").LocalSimulatorOptions} [options]
   * @returns {Promise<LocalSimulator>}
   */
  static async start(plugins, options = {}) {
    const sim = new LocalSimulator(plugins, options);
    try {
      await sim._start();
    } catch (error) {
      await sim.stop();
      throw error;
    }
    return sim;
  }

  constructor(plugins, options) {
    this.plugins = plugins.map((p) => path.resolve(p));
    this.options = options;
    this._ownWorkdir = !options.workdir;
    this.workdir = options.workdir
      ? path.resolve(options.workdir)
      : fs.mkdtempSync(path.join(os.tmpdir(), 'powerx-sim-'));
    fs.mkdirSync(this.workdir, { recursive: true });
    this.env = ownEnv(options.env || process.env, this.workdir);
    this.command = powerxCommand(options.powerx);
    this.url = '';
    this._child = null;
    this._exited = null; // resolves with the exit code once the process has ended
  }

  async _start() {
    const login = await this.powerx('login', '--mock');
    if (login.code !== 0) throw new Error(`powerx login --mock failed:\n${login.stderr}`);
    const args = ['host', 'start', '--mock', '--port', '0'];
    if (this.options.watch) args.push('--watch');
    args.push(...(this.options.args || []), ...this.plugins);
    const out = fs.openSync(this._outPath, 'w');
    const err = fs.openSync(this._errPath, 'w');
    try {
      this._child = spawn(this.command[0], [...this.command.slice(1), ...args], {
        cwd: this.workdir,
        env: this.env,
        stdio: ['ignore', out, err],
      });
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
    const child = this._child;
    live.add(this);
    child.unref(); // the test's process may end before stop(): the exit hook ends it too
    let failedToRun = null;
    this._exited = new Promise((resolve) => {
      child.once('error', (error) => {
        failedToRun = error;
        resolve(-1);
      });
      child.once('exit', (code, signal) => resolve(code === null ? signal : code));
    });
    let exitCode = null;
    this._exited.then((code) => { exitCode = code; });
    const hostFile = path.join(this.env.POWERX_STATE_DIR, 'host.json');
    const timeoutMs = this.options.startTimeoutMs ?? 60000;
    const url = await waitUntil(() => {
      if (exitCode !== null) return 'exited';
      try {
        return JSON.parse(fs.readFileSync(hostFile, 'utf8')).url;
      } catch {
        return ''; // not written yet, or being written
      }
    }, timeoutMs).catch((error) => {
      if (error instanceof WaitTimeout) return '';
      throw error;
    });
    if (failedToRun) {
      throw failedToRun.code === 'ENOENT' ? notInstalled(this.command) : failedToRun;
    }
    if (url === 'exited') {
      throw new Error(`the simulator exited with ${exitCode}:\n${this.output()}`);
    }
    if (!url) {
      throw new Error(`the simulator did not come up within ${timeoutMs} ms:\n${this.output()}`);
    }
    this.url = url;
    if (this.options.watch) await this.waitArmed(undefined, timeoutMs);
  }

  get _outPath() {
    return path.join(this.workdir, 'simulator.out');
  }

  get _errPath() {
    return path.join(this.workdir, 'simulator.err');
  }

  /** What the simulator printed so far: its stdout (reload lines), then its stderr. */
  output() {
    return readIfThere(this._outPath) + readIfThere(this._errPath);
  }

  /**
   * A request to the simulator: `path` is everything after its address.
   * @param {string} urlPath
   * @param {RequestInit} [init]
   */
  fetch(urlPath, init) {
    return fetch(this.url + urlPath, init);
  }

  /** The mock credential's bearer token (`powerx login --mock` wrote it). */
  token() {
    const file = path.join(this.env.POWERX_CONFIG_HOME, 'credentials.json');
    return JSON.parse(fs.readFileSync(file, 'utf8')).token;
  }

  /** Headers that carry the developer credential (for /internal/debug/...). */
  debugHeaders() {
    return { authorization: `Bearer ${this.token()}` };
  }

  /** `GET /internal/debug/status`: the host and every plugin's state. */
  async status() {
    const response = await this.fetch('/internal/debug/status', { headers: this.debugHeaders() });
    if (!response.ok) throw new Error(`status: ${response.status} ${await response.text()}`);
    return response.json();
  }

  /** `plugin`'s entry in the status (undefined when it is not mounted). */
  async pluginStatus(plugin) {
    return (await this.status()).plugins.find((p) => p.id === plugin);
  }

  /** Until the dev loop's watcher of `plugin` (undefined: of every plugin) is armed. */
  async waitArmed(plugin, timeoutMs = 30000) {
    const what = `an armed watcher of ${plugin || 'every plugin'}`;
    await waitUntil(async () => {
      const plugins = (await this.status()).plugins.filter((p) => !plugin || p.id === plugin);
      return plugins.length > 0 && plugins.every((p) => p.watch && p.watch.armed);
    }, timeoutMs, POLL_MS, { what }).catch((error) => {
      throw error instanceof WaitTimeout ? new Error(`${error.message}\n${this.output()}`) : error;
    });
  }

  /** Until generation `generation` (or a later one) of `plugin` serves, no reload pending. */
  async waitGeneration(plugin, generation, timeoutMs = 30000) {
    const what = `${plugin}: generation ${generation} serving, no reload pending`;
    return waitUntil(async () => {
      const p = await this.pluginStatus(plugin);
      return p && (p.generation || 0) >= generation && !p.watch.reload_pending ? p : undefined;
    }, timeoutMs, POLL_MS, { what });
  }

  /**
   * Run a `powerx` command against this simulator's credential and state.
   * @param {...string} args
   * @returns {Promise<{ code: number, stdout: string, stderr: string }>}
   */
  powerx(...args) {
    return new Promise((resolve, reject) => {
      execFile(this.command[0], [...this.command.slice(1), ...args],
        { cwd: this.workdir, env: this.env, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error && error.code === 'ENOENT') reject(notInstalled(this.command));
          else resolve({ code: error ? Number(error.code) || 1 : 0, stdout, stderr });
        });
    });
  }

  _kill(signal) {
    if (this._child && this._child.exitCode === null && this._child.signalCode === null) {
      try {
        this._child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  /** Stop the simulator (SIGTERM, then SIGKILL after 20 s) and remove its temporary folder. */
  async stop() {
    if (this._exited) {
      this._kill('SIGTERM');
      let timer;
      const late = new Promise((resolve) => {
        timer = setTimeout(() => resolve('late'), STOP_GRACE_MS);
      });
      if ((await Promise.race([this._exited, late])) === 'late') {
        this._kill('SIGKILL');
        await this._exited;
      }
      clearTimeout(timer);
    }
    live.delete(this);
    if (this._ownWorkdir) fs.rmSync(this.workdir, { recursive: true, force: true });
  }
}

module.exports = { LocalSimulator, waitUntil, WaitTimeout };
