'use strict';
// V8 code cache for a Node plugin's dependencies, so a warm spare that loads them ahead
// of a generation compiles from cache, not from source.
//
// Measured on the heavy benchmark plugin (express, lodash, typescript; Node 20, 2 cores):
// require() of the three costs ~230 ms in a fresh process, ~130 ms with this cache. A
// user-land startup snapshot (`node --build-snapshot`) was measured too and is no better:
// node:http (express needs it) cannot be serialized in Node 20's snapshot builder, and
// deserializing a 17 MB heap of just lodash and typescript takes ~100 ms by itself.
//
// The cache is made by this file run as a program, where the spare runs (in the plugin's
// sandbox: dependency code runs nowhere else), which sees node_modules read-only:
//   node node_code_cache.js NODE_MODULES MODULES_JSON
// require()s the modules as the spare would and prints each module file's cache as a
// control line {"key": ..., "data": base64}; the simulator writes them to the folder the
// spare then reads (one file per key). A cache V8 rejects (another Node, a changed file)
// is compiled from source as without it: the cache only ever saves time.
const crypto = require('node:crypto');
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const CONTROL_PREFIX = '@@powerx ';
// A file's own source map is named at its end.
const SOURCE_MAP_COMMENT = /\/[*/][#@]\s*sourceMappingURL=(\S+?)\s*(\*\/)?\s*$/;

function hasSourceMap(content, filename) {
  // Whether Node would map this file's stacks (inline, or a map file that is there; many
  // packages, TypeScript's compiler one, name a map they do not ship).
  const named = SOURCE_MAP_COMMENT.exec(content.slice(-4096));
  if (!named) return false;
  if (named[1].startsWith('data:')) return true;
  return fs.existsSync(path.resolve(path.dirname(filename), named[1].split(/[?#]/)[0]));
}

function cacheKey(filename) {
  return crypto.createHash('sha1').update(filename).digest('hex');
}

function requireFor(module) {
  // What Node gives a CommonJS module as `require` (its own is internal).
  const require = (id) => module.require(id);
  require.resolve = (request, options) => Module._resolveFilename(request, module, false, options);
  require.resolve.paths = (request) => Module._resolveLookupPaths(request, module);
  require.main = process.mainModule;
  require.extensions = Module._extensions;
  require.cache = Module._cache;
  return require;
}

function withCodeCache(cacheDir, made, load) {
  // Runs load() with CommonJS modules under node_modules compiled with the code cached in
  // cacheDir (made: an array, given [key, script] of each module compiled without, to
  // cache once load() has run). Returns how many module files compiled from the cache
  // and how many from source (V8 had none for them, or rejected it). Node's own compile is back once load() returns, so
  // the generation's bundle (breakpoints, source maps) compiles the usual way. A module
  // with a source map, or ESM, is compiled by Node as usual, so its stacks still map.
  const compile = Module.prototype._compile;
  const counts = { cached: 0, compiled: 0 };
  Module.prototype._compile = function compileCached(content, filename) {
    if (!filename.includes(`${path.sep}node_modules${path.sep}`) || filename.endsWith('.mjs') ||
        hasSourceMap(content, filename)) {
      return compile.call(this, content, filename);
    }
    const key = cacheKey(filename);
    let cachedData;
    try {
      cachedData = cacheDir ? fs.readFileSync(path.join(cacheDir, key)) : undefined;
    } catch (error) {
      cachedData = undefined;
    }
    let script;
    try {
      script = new vm.Script(Module.wrap(content), {
        filename, cachedData,
        importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
      });
    } catch (error) {
      return compile.call(this, content, filename); // Node's own words for a syntax error
    }
    const fromCache = cachedData !== undefined && script.cachedDataRejected === false;
    counts[fromCache ? 'cached' : 'compiled'] += 1;
    if (made && !fromCache) made.push([key, script]);
    const wrapper = script.runInThisContext({ displayErrors: true });
    return wrapper.call(this.exports, this.exports, requireFor(this), this, filename,
      path.dirname(filename));
  };
  try {
    load();
    return counts;
  } finally {
    Module.prototype._compile = compile;
  }
}

function requireAll(nodeModules, modules) {
  // Each module as the spare's preload finds it (from the plugin's folder); one that does
  // not load is left out: the generation's own require() reports it.
  for (const name of modules) {
    try {
      require(require.resolve(name, { paths: [path.dirname(nodeModules)] }));
    } catch (error) {
      // not cached: compiled from source when the generation loads it
    }
  }
}

module.exports = { withCodeCache, requireAll };

if (require.main === module) {
  const [nodeModules, modules] = process.argv.slice(2);
  const made = [];
  withCodeCache(null, made, () => requireAll(nodeModules, JSON.parse(modules)));
  for (const [key, script] of made) {
    // After the modules ran: the cache then holds the functions they called, compiled too.
    const data = script.createCachedData().toString('base64');
    fs.writeSync(1, `${CONTROL_PREFIX}${JSON.stringify({ event: 'code', key, data })}\n`);
  }
  process.exit(0); // a package may leave a timer or handle open
}
