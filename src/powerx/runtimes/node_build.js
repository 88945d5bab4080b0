'use strict';
// Bundle a Node plugin with esbuild, resolved from the plugin's own node_modules.
// Reads JSON requests, one per line, on stdin and answers one JSON line each, so one
// process can serve many rebuilds from an incremental esbuild context.
// Request: {"root", "entry", "outfile", "options": {target, format, sourcemap, minify, external}}
// Answer:  {"ok": true, "files": [{name, text}], "ms": n, "externals": [specifier]} or {"ok": false, "errors": [{file, line, column, text}]}
// The bundle and its map come back in the answer, never through the disk (write: false):
// they go straight into the artefact, and a failed build leaves nothing half-written.
const fs = require('node:fs');
const { builtinModules } = require('node:module');
const path = require('node:path');
const readline = require('node:readline');

const contexts = new Map();
const RESOLVING = Symbol('powerx-resolving');

function requireLoadable(file) {
  // Whether Node 20's require() can load it (no require() of an ES module there):
  // an ESM-only package stays in the bundle, as before.
  if (/\.(cjs|json|node)$/.test(file)) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = path.dirname(file); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (!fs.existsSync(manifest)) continue;
    try {
      return JSON.parse(fs.readFileSync(manifest, 'utf8')).type !== 'module';
    } catch (error) {
      return false;
    }
  }
  return true;
}

function dependenciesOutside(root) {
  // The plugin's own imports of packages installed in its node_modules stay require()s,
  // out of the bundle: a reload rebuilds and evaluates only the plugin's code, and the
  // warm spare has the packages loaded already (runtimes/node_shim.js). A package linked
  // from elsewhere (`file:` to a folder) is source the developer edits: it is bundled.
  const nodeModules = path.join(fs.realpathSync(root), 'node_modules') + path.sep;
  return {
    name: 'powerx-dependencies-outside',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData === RESOLVING || args.path.startsWith('node:')) return undefined;
        if (builtinModules.includes(args.path.split('/')[0])) return undefined;
        if (args.importer.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const resolved = await build.resolve(args.path, {
          kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: RESOLVING,
        });
        if (resolved.errors.length || !resolved.path.startsWith(nodeModules)) return undefined;
        if (!requireLoadable(resolved.path)) return undefined;
        return { path: args.path, external: true };
      });
    },
  };
}

function externalPackages(metafile) {
  // The bare specifiers the bundle require()s (node's own modules aside).
  const found = new Set();
  for (const output of Object.values(metafile.outputs)) {
    for (const imported of output.imports || []) {
      const name = imported.path;
      if (!imported.external || /^(node:|\.|\/)/.test(name)) continue;
      if (builtinModules.includes(name.split('/')[0])) continue;
      found.add(name);
    }
  }
  return [...found].sort();
}

function loadEsbuild(root) {
  const resolved = require.resolve('esbuild', { paths: [root] });
  return require(resolved);
}

function describe(errors, root) {
  return errors.map((e) => ({
    file: e.location ? path.relative(root, path.resolve(root, e.location.file)) : null,
    line: e.location ? e.location.line : null,
    column: e.location ? e.location.column : null,
    text: e.text,
  }));
}

async function build(request) {
  const started = process.hrtime.bigint();
  const root = path.resolve(request.root);
  let esbuild;
  try {
    esbuild = loadEsbuild(root);
  } catch (error) {
    return { ok: false, code: 'esbuild_missing', errors: [{ file: null, line: null, column: null,
      text: `esbuild is not installed for ${root}` }] };
  }
  const options = request.options || {};
  const key = `${root}\0${request.entry}\0${request.outfile}`;
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = await esbuild.context({
      absWorkingDir: root,
      entryPoints: [request.entry],
      outfile: request.outfile,
      bundle: true,
      platform: 'node',
      format: options.format || 'cjs',
      target: options.target || 'node18',
      sourcemap: options.sourcemap === false ? false : 'linked',
      // The TypeScript itself in the map: DevTools opened from the printed URL shows it
      // (the sources stay on this machine; the bundle runs from the artefact store).
      sourcesContent: true,
      minify: Boolean(options.minify),
      external: options.external || [],
      plugins: (options.format || 'cjs') === 'cjs'
        ? [dependenciesOutside(root)] : [],
      metafile: true,
      write: false,
      logLevel: 'silent',
    });
    contexts.set(key, ctx);
  }
  let result;
  try {
    result = await ctx.rebuild();
  } catch (error) {
    return { ok: false, code: 'build_failed', errors: describe(error.errors || [{ text: String(error) }], root) };
  }
  const files = [];
  for (const file of result.outputFiles) {
    let text = file.text;
    if (file.path.endsWith('.map')) {
      // Absolute source paths: the bundle runs from the artefact store, the sources stay here.
      const map = JSON.parse(text);
      map.sources = map.sources.map((s) => path.resolve(path.dirname(file.path), s));
      text = JSON.stringify(map);
    }
    files.push({ name: path.basename(file.path), text });
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ok: true, files, ms, externals: externalPackages(result.metafile) };
}

const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    let answer;
    try {
      answer = await build(JSON.parse(line));
    } catch (error) {
      answer = { ok: false, code: 'build_failed', errors: [{ file: null, line: null, column: null, text: String(error && error.message) }] };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  });
});
rl.on('close', () => {
  queue.then(async () => {
    for (const ctx of contexts.values()) await ctx.dispose();
    process.exit(0);
  });
});
