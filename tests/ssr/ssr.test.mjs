// Server-side rendering: frameworks such as Next.js, Nuxt and SvelteKit
// import the package on the server, in Node, where there is no browser.
// Importing any shipped entry must neither throw nor touch a browser global
// (traps on globalThis record every read); `createClient` there rejects with
// a plain `Error` that says why, and never reaches for the WebAssembly.
//   node --test tests/ssr/   (after npm/scripts/build.sh)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'npm', 'dist');
const BROWSER_GLOBALS = [
  'window', 'document', 'navigator', 'location', 'localStorage', 'sessionStorage', 'self',
  'addEventListener', 'dataLayer', '__tcfapi', 'indexedDB', 'history', 'screen',
];

const touched = [];
for (const name of BROWSER_GLOBALS) {
  Object.defineProperty(globalThis, name, {
    configurable: true,
    get() {
      touched.push(name);
      return undefined;
    },
    set() {
      touched.push(`${name}=`);
    },
  });
}
// A fetch during import or createClient would be the wasm being loaded.
const realFetch = globalThis.fetch;
let fetches = 0;
globalThis.fetch = (...a) => {
  fetches++;
  return realFetch(...a);
};

/** Imports `file` from npm/dist with the traps armed; returns the module. */
async function importTrapped(file) {
  const path = join(DIST, file);
  assert.ok(existsSync(path), `npm/dist/${file} is missing: run npm/scripts/build.sh`);
  touched.length = 0;
  const mod = await import(pathToFileURL(path).href);
  assert.deepEqual(touched, [], `importing ${file} read browser globals: ${touched.join(', ')}`);
  return mod;
}

for (const entry of ['index.js', 'inline.js']) {
  test(`importing ${entry} in Node touches no browser global and does not throw`, async () => {
    const mod = await importTrapped(entry);
    assert.equal(typeof mod.createClient, 'function');
    assert.equal(typeof mod.VERSION, 'string');
    assert.equal(fetches, 0, 'nothing was fetched at import');
  });

  test(`createClient from ${entry} rejects in Node with a clear Error`, async () => {
    const mod = await importTrapped(entry);
    const p = mod.createClient({ endpoint: 'https://collector.example', writeKey: 'k' });
    assert.ok(p instanceof Promise, 'createClient returns a promise (no synchronous throw)');
    await assert.rejects(p, (e) => {
      assert.equal(e.constructor, Error, 'a plain Error, not a TypeError: the options were fine');
      assert.match(e.message, /needs a browser/);
      assert.match(e.message, /server-side rendering/);
      return true;
    });
    assert.equal(fetches, 0, 'no wasm was fetched on the server');
    // Invalid options are still reported as such on the server.
    await assert.rejects(mod.createClient({ writeKey: 'k' }), TypeError);
  });
}

test('the JavaScript engine (wasm2js fallback) imports in Node without touching browser globals', async () => {
  const mod = await importTrapped('sdk_wasm_js.js');
  assert.equal(typeof mod.initJs, 'function');
  assert.equal(typeof mod.Threadline, 'function');
});
