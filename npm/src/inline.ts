/**
 * `@threadline/web/inline`: the same API as `@threadline/web`, with the
 * WebAssembly core inside this JavaScript (base64), for sites and tag
 * managers that cannot serve a `.wasm` file or set its MIME type. It costs
 * about a third more bytes than the default entry and the wasm is compiled
 * from memory instead of while it downloads, so prefer the default entry
 * where a `.wasm` can be served. Under a CSP that forbids WebAssembly the
 * JavaScript build of the core (`sdk_wasm_js.js`) runs instead, as with the
 * default entry. Safe to import during server-side rendering: the bytes are
 * decoded only when `createClient` runs in a browser.
 */
import { createClient as createWith } from './index.js';
import type { BrowserOptions, Client, ClientOptions } from './index.js';
import WASM_BASE64 from './sdk_wasm_inline.js';

export * from './index.js';

let bytes: Uint8Array | undefined;

function wasmBytes(): Uint8Array {
  if (!bytes) {
    const text = atob(WASM_BASE64);
    bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  }
  return bytes;
}

/** `createClient` of `@threadline/web`, with the inlined wasm unless `options.wasm` is given. */
export function createClient(options: ClientOptions, browser?: BrowserOptions): Promise<Client> {
  // Decoded only in a browser: on the server createClient rejects anyway.
  const plain = options !== null && typeof options === 'object' && Object.getPrototypeOf(options) === Object.prototype;
  if (plain && options.wasm === undefined && typeof document !== 'undefined' && typeof atob === 'function') {
    return createWith({ ...options, wasm: wasmBytes() }, browser);
  }
  return createWith(options, browser);
}
