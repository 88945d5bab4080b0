'use strict';
// Bundle a Node plugin with esbuild, resolved from the plugin's own node_modules.
// Reads JSON requests, one per line, on stdin and answers one JSON line each, so one
// process can serve many rebuilds from an incremental esbuild context.
// Request: {"root", "entry", "outfile", "options": {target, format, sourcemap, minify, external}}
// Answer:  {"ok": true, "files": [{name, text}], "ms": n} or {"ok": false, "errors": [{file, line, column, text}]}
// The bundle and its map come back in the answer, never through the disk (write: false):
// they go straight into the artefact, and a failed build leaves nothing half-written.
const path = require('node:path');
const readline = require('node:readline');

const contexts = new Map();

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
  return { ok: true, files, ms };
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
