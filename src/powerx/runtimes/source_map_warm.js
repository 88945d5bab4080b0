'use strict';
// Loaded by a warm spare (node_shim.js) before it gets its plugin. Node loads its
// source-map support (node --enable-source-maps) lazily, with the first module that names
// a map: a plugin's bundle would pay ~0.45 ms for it on every reload. This file names a
// tiny inline map (of itself), so the spare pays instead.
module.exports = true;
//# sourceMappingURL=data:application/json;base64,eyJ2ZXJzaW9uIjozLCJzb3VyY2VzIjpbInNvdXJjZV9tYXBfd2FybS5qcyJdLCJuYW1lcyI6W10sIm1hcHBpbmdzIjoiQUFBQSJ9
