/**
 * The tag-manager entry: what `dist/threadline.js` (one IIFE file, loaded
 * by `<script async src>`) runs. It replaces the inline snippet's stub
 * `window.threadline` with the real command function and replays the stub's
 * queue (`threadline.q`) in order.
 *
 * The page must never notice us failing: no call throws, a throwing host
 * callback cannot stop the queue, and when the core cannot load (blocked
 * `.wasm`, network error, CSP) `window.threadline` keeps accepting calls and
 * drops them. See docs/tag-managers.md.
 */
import { createClient, VERSION } from './index.js';
import type { BrowserOptions, Client, ClientOptions, DecideOptions, Decision } from './index.js';
import { bridgeDataLayer } from './datalayer.js';
import type { DataLayerOptions } from './datalayer.js';

/** `init`'s options: the npm package's, plus what only the script build has. */
export interface SnippetOptions extends ClientOptions {
  /**
   * The `.wasm` URL (or its bytes, or a compiled module). Default:
   * `sdk_wasm_bg.wasm` beside this script.
   */
  wasm?: ClientOptions['wasm'];
  /** Bridge from the GTM dataLayer (see datalayer.ts). */
  dataLayer?: DataLayerOptions;
}

type Command = ArrayLike<unknown>;
type Stub = ((...args: unknown[]) => unknown) & { q?: Command[]; loaded?: boolean; version?: string };

/** Commands waiting for the client; beyond this a page that never calls `init` stops growing it. */
const MAX_PENDING = 1000;
/** How long a queued `decide` waits for the rules artifact by default. */
const DECIDE_WAIT_MS = 3000;
const GUARD = '__threadlineLoaded';

// Captured now: `document.currentScript` is only set during this first,
// synchronous run (async scripts included).
const scriptSrc = currentScriptSrc();

function currentScriptSrc(): string | undefined {
  try {
    const s = document.currentScript as HTMLScriptElement | null;
    if (s && s.src) return s.src;
    // Run some other way (a loader that evaluates it): the page's own tag, if there is one.
    const tags = document.querySelectorAll<HTMLScriptElement>('script[src]');
    for (let i = tags.length - 1; i >= 0; i--) {
      const src = tags[i].src;
      if (/\/threadline(\.min)?\.js(\?|#|$)/.test(src)) return src;
    }
  } catch {
    // no document: not a browser
  }
  return undefined;
}

const warned = new Set<string>();

function warn(message: string, error?: unknown): void {
  if (warned.has(message)) return;
  warned.add(message);
  try {
    if (error === undefined) console.warn(`threadline: ${message}`);
    else console.warn(`threadline: ${message}`, error);
  } catch {
    // a page without a console
  }
}

/**
 * A host callback's exception is the host's bug: report it as an uncaught
 * error of its own (so it shows in the console and error monitors) without
 * letting it unwind through the queue.
 */
function host<A extends unknown[]>(f: unknown, ...args: A): void {
  if (typeof f !== 'function') return;
  try {
    (f as (...a: A) => unknown)(...args);
  } catch (e) {
    setTimeout(() => {
      throw e;
    });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

type State = 'waiting' | 'starting' | 'ready' | 'failed';

class Runner {
  private state: State = 'waiting';
  private client: Client | undefined;
  private pending: Command[] = [];
  private draining = false;

  /** Entry point of every call: queue, run now if the client is there. Never throws. */
  command(cmd: Command): void {
    try {
      // Once the core could not load, every call (a second init too) is dropped quietly.
      if (this.state === 'failed') return;
      if (cmd[0] === 'init') {
        this.init(cmd[1], cmd[2]);
        return;
      }
      if (this.pending.length >= MAX_PENDING) {
        warn(`more than ${MAX_PENDING} calls wait for init; later ones are dropped`);
        return;
      }
      this.pending.push(cmd);
      this.drain();
    } catch (e) {
      warn('a call failed', e);
    }
  }

  private init(options: unknown, browser: unknown): void {
    if (this.state !== 'waiting') {
      warn('init was called again; the first client stays, this call is ignored');
      return;
    }
    this.state = 'starting';
    const opts = isObject(options) ? { ...options } : options;
    let layer: DataLayerOptions | undefined;
    if (isObject(opts)) {
      layer = opts.dataLayer as DataLayerOptions | undefined;
      delete opts.dataLayer;
      if (opts.jsEngine === undefined && scriptSrc) {
        // A classic script's import() resolves against the page: name the
        // JavaScript engine (strict-CSP fallback) beside this script.
        opts.jsEngine = new URL('sdk_wasm_js.js', scriptSrc).href;
      }
      if (opts.wasm === undefined) {
        if (scriptSrc) opts.wasm = new URL('sdk_wasm_bg.wasm', scriptSrc).href;
        else warn('cannot tell where threadline.js was loaded from; give init a wasm URL');
      }
    }
    // The bridge starts with init, so what the dataLayer held before takes
    // init's place in the queue, and later pushes theirs.
    let unhook: (() => void) | undefined;
    if (layer !== undefined) {
      try {
        unhook = bridgeDataLayer(window, layer, (name, properties) => this.command(['track', name, properties]), warn);
      } catch (e) {
        warn('the dataLayer bridge is off', e);
      }
    }
    let started: Promise<Client>;
    try {
      started = createClient(opts as ClientOptions, browser as BrowserOptions | undefined);
    } catch (e) {
      started = Promise.reject(e);
    }
    started.then(
      (client) => {
        this.client = client;
        this.state = 'ready';
        this.drain();
      },
      (e: unknown) => {
        this.state = 'failed';
        this.pending = [];
        if (unhook) unhook();
        warn('could not start; calls are ignored on this page', e);
      },
    );
  }

  /** Runs what is queued, in order; commands queued while running join the end. */
  private drain(): void {
    if (this.draining || !this.client) return;
    this.draining = true;
    try {
      let cmd: Command | undefined;
      while ((cmd = this.pending.shift()) !== undefined) {
        try {
          this.run(this.client, cmd);
        } catch (e) {
          // An argument error (TypeError/RangeError): the page's mistake, named in the console.
          warn(`${String(cmd[0])}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private run(c: Client, a: Command): void {
    const name = a[0];
    if (typeof name === 'function') {
      host(name, c);
      return;
    }
    switch (name) {
      case 'track':
        c.track(a[1] as string, a[2] as never);
        return;
      case 'page':
        // `threadline('page', { ... })`: properties without a name.
        if (isObject(a[1])) c.page(undefined, a[1]);
        else c.page(a[1] as string | undefined, a[2] as never);
        return;
      case 'identify':
        c.identify(a[1] as string | undefined, a[2] as never, a[3] as never);
        return;
      case 'alias':
        c.alias(a[1] as string, a[2] as string | undefined);
        return;
      case 'reset':
        c.reset();
        return;
      case 'consent':
        host(a[2], c.setConsent(a[1] as never));
        return;
      case 'consentTcf':
        host(a[2], c.setConsentTcf(a[1] as string));
        return;
      case 'flush': {
        const cb = a[1];
        void c.flush().then(() => host(cb));
        return;
      }
      case 'on': {
        const listener = a[2];
        if (typeof listener !== 'function') throw new TypeError('on needs a listener function');
        c.on(a[1] as never, (payload: unknown) => host(listener, payload));
        return;
      }
      case 'ready': {
        const cb = a[1];
        void c.ready(a[2] as number | undefined).then((ok) => host(cb, ok, c));
        return;
      }
      case 'decide':
        this.decide(c, a);
        return;
      case 'displayed':
        c.displayed(a[1] as Decision);
        return;
      case 'clicked':
        c.clicked(a[1] as Decision);
        return;
      case 'loadRules':
        c.loadRules(a[1] as string, a[2] as string | undefined);
        return;
      case 'refreshRules':
        c.refreshRules();
        return;
      case 'refreshProfile':
        c.refreshProfile();
        return;
      case 'shutdown':
        void c.shutdown();
        return;
      default:
        throw new TypeError(`unknown command "${String(name)}"`);
    }
  }

  /**
   * `decide(placement or [placements], options?, callback)`: waits for the rules artifact
   * (`options.timeoutMs`, default 3 s), then decides; the callback gets the
   * decisions (`[]` on failure) and the error, if any.
   */
  private decide(c: Client, a: Command): void {
    const placement = a[1];
    let options = a[2];
    let cb = a[3];
    if (typeof options === 'function') {
      cb = options;
      options = undefined;
    }
    if (typeof cb !== 'function') throw new TypeError('decide needs a callback');
    let wait = DECIDE_WAIT_MS;
    let decideOptions: DecideOptions | undefined;
    if (isObject(options)) {
      const { timeoutMs, ...rest } = options;
      if (typeof timeoutMs === 'number' && timeoutMs >= 0) wait = timeoutMs;
      decideOptions = rest as DecideOptions;
    } else if (options !== undefined) {
      throw new TypeError('decide options must be an object ({ max, context, timeoutMs })');
    }
    void c.ready(wait).then(() => {
      let decisions: Decision[] | Record<string, Decision[]> = Array.isArray(placement) ? {} : [];
      let error: unknown;
      try {
        // An array of placements: one call for all of them (`decideMany`).
        decisions = Array.isArray(placement)
          ? c.decideMany(placement as string[], decideOptions)
          : c.decide(placement as string, decideOptions);
      } catch (e) {
        error = e;
        warn(`decide: ${e instanceof Error ? e.message : String(e)}`);
      }
      host(cb, decisions, error);
    });
  }
}

/**
 * The commands a stub collected: the snippet's function with `q`, or an
 * object `{ q: [...] }` (what GTM's sandboxed `createQueue` can make).
 */
function queueOf(stub: unknown): Command[] {
  const q = stub !== null && (typeof stub === 'function' || typeof stub === 'object') ? (stub as Stub).q : undefined;
  return Array.isArray(q) ? q.filter((c): c is Command => c !== null && typeof c === 'object') : [];
}

/** Installs `window.threadline` (once per page) and replays the snippet's queue. */
function install(): void {
  if (typeof window === 'undefined') return;
  const w = window as unknown as Record<string, unknown>;
  const existing = w.threadline as Stub | undefined;
  const loaded = w[GUARD] as Stub | undefined;
  if (loaded) {
    // Loaded twice: the first copy owns the page. A stub defined since
    // (the snippet pasted again) hands its queue to it.
    if (existing !== loaded) {
      const q = queueOf(existing);
      w.threadline = loaded;
      for (const cmd of q) loaded(...Array.from(cmd));
    }
    return;
  }
  const runner = new Runner();
  const threadline: Stub = function (...args: unknown[]): undefined {
    runner.command(args);
    return undefined;
  };
  threadline.loaded = true;
  threadline.version = VERSION;
  Object.defineProperty(w, GUARD, { value: threadline });
  const q = queueOf(existing);
  w.threadline = threadline;
  for (const cmd of q) runner.command(cmd);
}

try {
  install();
} catch (e) {
  warn('could not install', e);
}
