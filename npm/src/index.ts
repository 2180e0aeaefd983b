/**
 * Threadline for the web.
 *
 * A thin layer over the WebAssembly build of Threadline's Rust core: it
 * checks arguments (a bad one throws a clear `TypeError`/`RangeError`),
 * serialises properties once, and contains every other failure so the host
 * page never sees an exception from inside the SDK. Batching, retries,
 * persistence and every other rule live in the core.
 *
 * Nothing here touches `window` at import time, so importing this module
 * during server-side rendering is safe; `createClient` needs a browser.
 */
import init, { Threadline } from './sdk_wasm.js';

export const VERSION = '0.1.0';

/** When a batch leaves (see the README for the defaults). */
export interface BatchOptions {
  maxEvents?: number;
  maxBytes?: number;
  maxAgeMs?: number;
  maxInFlight?: number;
}

/** Retry policy for failed uploads. */
export interface RetryOptions {
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  maxRetryAfterMs?: number;
  maxAttempts?: number;
  maxEventAgeMs?: number;
  beaconConfirmMs?: number;
}

/** Bounds on what the client holds in memory and in localStorage. */
export interface QueueOptions {
  maxEvents?: number;
  maxBytes?: number;
  maxPersistBytes?: number;
  persistDebounceMs?: number;
}

/** Limits on one event; a call over a limit throws a `RangeError`. */
export interface LimitOptions {
  maxNameLength?: number;
  maxPropertyDepth?: number;
  maxEventBytes?: number;
}

export interface ClientOptions {
  /** Collector base URL; batches are POSTed to `<endpoint>/v1/batch`. */
  endpoint: string;
  /** Sent as HTTP basic auth (in the body for beacons). */
  writeKey: string;
  batch?: BatchOptions;
  retry?: RetryOptions;
  queue?: QueueOptions;
  limits?: LimitOptions;
  /** Prefix of the localStorage/sessionStorage keys. Default `threadline`. */
  storagePrefix?: string;
  /** Keep the queue and identity in localStorage. Default `true`. */
  persist?: boolean;
  /** Gzip request bodies with `CompressionStream`. Default `true`. */
  compress?: boolean;
  /** Abort an upload that takes longer. Default 30000. */
  requestTimeoutMs?: number;
  /** Send what is queued by `sendBeacon` when the page is hidden. Default `true`. */
  beaconOnHide?: boolean;
  /**
   * Where the `.wasm` comes from: a URL (default: `sdk_wasm_bg.wasm` beside
   * this module, resolved from `import.meta.url`), or its bytes or a
   * compiled module for environments that cannot serve it.
   */
  wasm?: string | URL | BufferSource | WebAssembly.Module;
}

export type Properties = Record<string, unknown>;

/** Counters of the core and the browser glue (see the README). */
export interface Stats {
  accepted: number;
  rejected: number;
  restored: number;
  queued: number;
  queuedBytes: number;
  inFlight: number;
  delivered: number;
  beaconed: number;
  unconfirmed: number;
  uploads: number;
  retries: number;
  droppedQueueFull: number;
  droppedRejected: number;
  droppedMaxAttempts: number;
  droppedExpired: number;
  handedOver: number;
  notPersisted: number;
  lastStatus: number | null;
  backoffUntil: number | null;
  storageFailures: number;
  storageAvailable: boolean;
  webLocks: boolean;
  tab: string;
  adoptedQueues: number;
  discardedSnapshots: number;
  gzipUploads: number;
  beaconsRefused: number;
  /** Internal errors contained by the wrapper (should stay 0). */
  contained: number;
}

export interface Identity {
  anonymousId: string;
  userId?: string;
  traits?: Properties;
}

export interface Client {
  /** Records an event; returns its messageId (undefined if the client is closed). */
  track(name: string, properties?: Properties): string | undefined;
  /** Records a page view of the current location. */
  page(name?: string, properties?: Properties): string | undefined;
  /** Attaches a known user id (and traits) to this browser. */
  identify(userId: string, traits?: Properties): string | undefined;
  /** Sends what is queued; resolves when nothing more can be sent now. Never rejects. */
  flush(): Promise<void>;
  /** Flushes, stores what is left for the next page, and stops. Never rejects. */
  shutdown(): Promise<void>;
  stats(): Stats;
  identity(): Identity | undefined;
}

const CORE_KEYS = ['endpoint', 'writeKey', 'batch', 'retry', 'queue', 'limits'] as const;
const WEB_KEYS = ['storagePrefix', 'persist', 'compress', 'requestTimeoutMs', 'beaconOnHide'] as const;

let loading: Promise<unknown> | undefined;

function loadWasm(source: ClientOptions['wasm']): Promise<unknown> {
  if (!loading) {
    const module_or_path = source ?? new URL('./sdk_wasm_bg.wasm', import.meta.url);
    loading = init({ module_or_path }).catch((e: unknown) => {
      loading = undefined; // let a later call try again
      throw e;
    });
  }
  return loading;
}

function isPlainObject(v: unknown): v is Properties {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function serialise(what: string, value: Properties | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) {
    throw new TypeError(`threadline: ${what} must be a plain object`);
  }
  try {
    return JSON.stringify(value);
  } catch (e) {
    throw new TypeError(`threadline: ${what} cannot be serialised to JSON (${String(e)})`);
  }
}

function requireString(what: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw new TypeError(`threadline: ${what} must be a string`);
  }
  return value;
}

function isArgumentError(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError;
}

/**
 * Creates a client. Rejects with a `TypeError` for invalid options and with
 * an `Error` when there is no browser (server-side rendering) or the
 * WebAssembly module cannot load.
 */
export async function createClient(options: ClientOptions): Promise<Client> {
  if (!isPlainObject(options)) {
    throw new TypeError('threadline: createClient needs an options object');
  }
  requireString('options.endpoint', options.endpoint);
  requireString('options.writeKey', options.writeKey);
  if (typeof window === 'undefined' || typeof document === 'undefined') {
    throw new Error('threadline: createClient needs a browser (no window here, e.g. during server-side rendering)');
  }
  const core: Record<string, unknown> = { library: { name: 'threadline-web', version: VERSION } };
  for (const k of CORE_KEYS) if (options[k] !== undefined) core[k] = options[k];
  const web: Record<string, unknown> = {};
  for (const k of WEB_KEYS) if (options[k] !== undefined) web[k] = options[k];

  await loadWasm(options.wasm);
  const tl = await Threadline.create(JSON.stringify(core), JSON.stringify(web));
  return new WebClient(tl);
}

class WebClient implements Client {
  private tl: Threadline | undefined;
  private lastHref: string;
  private contained = 0;

  constructor(tl: Threadline) {
    this.tl = tl;
    this.lastHref = location.href;
  }

  /**
   * Runs a call into the core. Argument errors reach the caller; anything
   * else (which would be a bug of ours) is counted and swallowed, and a
   * trapped WebAssembly instance disables the client rather than the page.
   */
  private call<T>(f: (tl: Threadline) => T): T | undefined {
    const tl = this.tl;
    if (!tl) return undefined;
    try {
      return f(tl);
    } catch (e) {
      if (isArgumentError(e)) throw e;
      this.contained++;
      if (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) {
        this.tl = undefined;
      }
      return undefined;
    }
  }

  private locationChecked = false;

  /**
   * Client-side routing changes the URL without a reload: follow it.
   * Checked once per task (a route change inside one synchronous task is
   * not a thing), which keeps a `location` read off most `track` calls.
   */
  private followLocation(tl: Threadline): void {
    if (this.locationChecked) return;
    this.locationChecked = true;
    queueMicrotask(() => {
      this.locationChecked = false;
    });
    const href = location.href;
    if (href !== this.lastHref) {
      this.lastHref = href;
      tl.refreshPage();
    }
  }

  track(name: string, properties?: Properties): string | undefined {
    requireString('event name', name);
    const json = serialise('properties', properties);
    return this.call((tl) => {
      this.followLocation(tl);
      return tl.track(name, json);
    });
  }

  page(name?: string, properties?: Properties): string | undefined {
    if (name !== undefined) requireString('page name', name);
    const json = serialise('properties', properties);
    return this.call((tl) => {
      this.lastHref = location.href;
      return tl.page(name, json);
    });
  }

  identify(userId: string, traits?: Properties): string | undefined {
    requireString('userId', userId);
    const json = serialise('traits', traits);
    return this.call((tl) => {
      this.followLocation(tl);
      return tl.identify(userId, json);
    });
  }

  async flush(): Promise<void> {
    try {
      await this.call((tl) => tl.flush());
    } catch {
      this.contained++;
    }
  }

  async shutdown(): Promise<void> {
    await this.flush();
    this.call((tl) => {
      tl.close();
      tl.free();
    });
    this.tl = undefined;
  }

  stats(): Stats {
    const json = this.call((tl) => tl.stats());
    const parsed = json ? (JSON.parse(json) as Stats) : ({} as Stats);
    parsed.contained = this.contained;
    return parsed;
  }

  identity(): Identity | undefined {
    const json = this.call((tl) => tl.identity());
    return json ? (JSON.parse(json) as Identity) : undefined;
  }
}
