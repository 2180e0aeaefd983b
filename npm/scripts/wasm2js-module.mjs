#!/usr/bin/env node
// Makes dist/sdk_wasm_js.js: the JavaScript engine used when a page's
// Content Security Policy forbids WebAssembly compilation (no
// 'wasm-unsafe-eval'). One ES module holding
//   - the wasm-bindgen glue of a core built without reference types (the
//     externref table is a second table, which wasm2js cannot translate),
//     cut before its WebAssembly loaders (`__wbg_load`, `initSync`, `init`),
//     so nothing in it compiles WebAssembly or names a `.wasm` file;
//   - binaryen's wasm2js translation of that core, wrapped in a function
//     that takes the glue's imports object, exactly as a WebAssembly
//     instance would receive it;
//   - `initJs()`, which builds the "instance" (`{ exports }`: the functions,
//     `memory` with `buffer`/`grow`, the function table) and hands it to the
//     glue's own `__wbg_finalize_init`, as `init()` does with a real one.
// Two fixes keep the glue's assumptions true: growing memory detaches the
// old ArrayBuffer (the glue renews its cached views when a buffer is
// detached, as WebAssembly.Memory.grow does), and a trap throws
// `WebAssembly.RuntimeError` like the wasm build (the wrapper then disables
// the client rather than the page).
//
//   node wasm2js-module.mjs <glue.js> <wasm2js-output.js> <out.js>
import { readFileSync, writeFileSync } from 'node:fs';

const [gluePath, corePath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error('usage: wasm2js-module.mjs <glue.js> <wasm2js-output.js> <out.js>');
  process.exit(2);
}

function fail(msg) {
  console.error(`wasm2js-module: ${msg} (wasm-bindgen or binaryen output changed shape; update npm/scripts/wasm2js-module.mjs)`);
  process.exit(1);
}

function replaceOnce(text, from, to, what) {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) fail(`expected exactly one ${what}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

// The glue: keep everything up to its loaders.
let glue = readFileSync(gluePath, 'utf8');
const cut = glue.indexOf('async function __wbg_load(');
if (cut < 0) fail('no __wbg_load in the glue');
glue = glue.slice(0, cut);
for (const needed of ['function __wbg_get_imports()', 'function __wbg_finalize_init(', 'export class Threadline']) {
  if (!glue.includes(needed)) fail(`the glue lacks ${needed}`);
}
if (/externref/.test(glue)) fail('the glue uses an externref table: build the core with -reference-types');
if (/\.wasm\b/.test(glue)) fail('the kept glue still names a .wasm file');

// The core: drop its ES imports and exports; it becomes a function of the imports object.
let core = readFileSync(corePath, 'utf8');
core = core.replace(/^import \* as \S+ from '[^']*';\n/gm, '');
const tail = core.indexOf('\nvar retasmFunc = asmFunc(');
if (tail < 0) fail('no retasmFunc in the wasm2js output');
core = core.slice(0, tail);
if (/^\s*(import|export)\b/m.test(core)) fail('the wasm2js output has other imports or exports');
if (core.includes('var newBuffer = new ArrayBuffer(')) {
  core = replaceOnce(core, '   buffer = newBuffer;', '   detach(buffer);\n   buffer = newBuffer;', 'memory grow');
}
if (core.includes("throw new Error('abort')")) {
  core = core.replaceAll("throw new Error('abort')", 'throw trap()');
}

const out = `${glue}
/**
 * The core translated to JavaScript by binaryen's wasm2js, as a function of
 * the imports object a WebAssembly instance would receive.
 */
function instantiateCore(imports) {
  /** WebAssembly.Memory.grow detaches the old buffer; the glue relies on it to renew its views. */
  function detach(old) {
    try {
      if (typeof old.transfer === 'function') old.transfer(0);
      else structuredClone(old, { transfer: [old] });
    } catch (e) {
      // Without either, views are renewed by identity checks only.
    }
  }
  function trap() {
    return typeof WebAssembly === 'object' && WebAssembly.RuntimeError
      ? new WebAssembly.RuntimeError('unreachable')
      : new Error('unreachable');
  }
${core}
  return asmFunc(imports);
}

/** Starts the JavaScript engine (once); returns its exports. */
function initJs() {
  if (wasm !== undefined) return wasm;
  return __wbg_finalize_init({ exports: instantiateCore(__wbg_get_imports()) }, undefined);
}

export { initJs };
`;
writeFileSync(outPath, out);
