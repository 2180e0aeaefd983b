/**
 * Threadline for the web.
 *
 * A thin layer over the WebAssembly build of Threadline's Rust core: it
 * checks arguments (a bad one throws a clear `TypeError`/`RangeError`),
 * serialises properties once, and contains every other failure so the host
 * page never sees an exception from inside the SDK. Batching, retries,
 * persistence and every other rule live in the core.
 *
 * Loading the core. By default the `.wasm` beside this module
 * (`new URL('./sdk_wasm_bg.wasm', import.meta.url)`, which bundlers such as
 * Vite and webpack emit as an asset) is fetched and compiled with streaming
 * compilation, asynchronously, from `createClient`. `@threadline/web/inline`
 * carries the wasm inside the JavaScript (base64) for sites that cannot serve
 * a `.wasm` file. When the page's Content Security Policy forbids
 * WebAssembly compilation (a `script-src` without `'wasm-unsafe-eval'`), or
 * the browser has WebAssembly switched off, the same core translated to
 * JavaScript by binaryen's wasm2js (`sdk_wasm_js.js`, same origin as this
 * module, loaded with a dynamic `import()` only then) runs instead, with the
 * same behaviour; `client.engine` tells which one runs (`'wasm'` or `'js'`).
 * No code is ever evaluated from a string, and nothing is fetched from
 * another host.
 *
 * Server-side rendering. Importing this module (or the inline entry) in Node,
 * as Next.js, Nuxt or SvelteKit do on the server, neither throws nor touches
 * `window`, `document`, `navigator` or storage: nothing runs at import time.
 * `createClient` there rejects with a plain `Error` ("createClient needs a
 * browser ...") before loading anything; create the client in code that runs
 * in the browser only (an effect, `onMount`, a dynamic import on the client).
 */
import init, { Threadline as WasmThreadline } from './sdk_wasm.js';

type Threadline = WasmThreadline;

/** Which build of the core runs: WebAssembly, or its JavaScript translation (strict CSP). */
export type Engine = 'wasm' | 'js';

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

/** The purposes Threadline knows; `analytics` gates collection itself. */
export type Purpose = 'analytics' | 'personalization' | 'advertising' | 'sale';
/** `pending`: not asked yet, or not answered. */
export type Choice = 'pending' | 'granted' | 'denied';
/** Choices for any subset of purposes; the ones left out keep their state. */
export type ConsentChoices = Partial<Record<Purpose, Choice>>;

/** The consent in force (the Global Privacy Control signal applied). */
export interface Consent {
  analytics: Choice;
  personalization: Choice;
  advertising: Choice;
  sale: Choice;
  /** The browser sends Global Privacy Control: `sale` and `advertising` read as denied. */
  gpc: boolean;
}

export interface ConsentOptions {
  /**
   * The state before any choice: one choice for every purpose, or a choice
   * per purpose (purposes left out start `pending`). Default `granted`;
   * a consent-first site sets `pending`.
   */
  default?: Choice | ConsentChoices;
  /** How IAB TCF TC strings map to purposes. */
  tcf?: {
    /** Your Global Vendor List id, if you have one: then your vendor consent is required too. */
    vendorId?: number;
    /** TCF purposes (1 to 24) each purpose needs. Defaults: analytics [1, 8], personalization [1, 5, 6], advertising [1, 3, 4], sale []. */
    purposes?: Partial<Record<Purpose, number[]>>;
  };
  /** Events held in memory while `analytics` is pending. Default 1000. */
  maxHeldEvents?: number;
  /** Bytes held in memory while `analytics` is pending. Default 1 MiB. */
  maxHeldBytes?: number;
  /** On denial, send one `Consent Changed` record without identifiers. Default `false`. */
  sendDenial?: boolean;
}

export interface IdentityOptions {
  /** Lifetime of a device id. Default 395 days. */
  deviceIdMaxAgeMs?: number;
  /** Extend the lifetime on use (one cookie write a day at most) instead of rotating. Default `false`. */
  renewDeviceId?: boolean;
  /** Inactivity that ends a session. Default 30 minutes. */
  sessionTimeoutMs?: number;
  /** Longest a session lasts. Default 12 hours. */
  sessionMaxMs?: number;
  /** Id namespaces normalised and SHA-256 hashed before they leave the device. Default `['email', 'phone']`. */
  hashIds?: string[];
  /** Calling code (e.g. `'44'`) for phone numbers given without one. */
  defaultCallingCode?: string;
}

/**
 * Where on-device decisions get their rules artifact (see docs/artifact.md).
 * Without this section (and without an artifact handed over) no profile is kept.
 */
export interface RulesConfig {
  /**
   * The artifact's URL, fetched with `cache: "no-store"`, no credentials, and
   * `If-None-Match` once an ETag is known; relative URLs resolve against the
   * page. A cross-origin server must send `Access-Control-Expose-Headers: ETag`.
   */
  url?: string;
  /** The detached signature's URL. Default `<url>.sig`. */
  signatureUrl?: string;
  /** Base64 of the Ed25519 public key (32 bytes): then only signed artifacts are used. */
  publicKey?: string;
  /** Revalidation interval. Default 300000. */
  refreshIntervalMs?: number;
  /** First retry after a failed fetch (doubling). Default 10000. */
  retryMs?: number;
}

/** Bounds on the on-device profile that decisions read. */
export interface ProfileOptions {
  /** Event properties counted in the profile. */
  properties?: string[];
  maxEvents?: number;
  maxValues?: number;
  maxOffers?: number;
  maxTraitBytes?: number;
  maxNameBytes?: number;
  maxAssignments?: number;
}

/**
 * Profile sync: what the collector knows of the person from their other
 * devices (the app, another browser) counts in `decide` here. Fetched only
 * while `personalization` is granted, rules are in use, and `identify` gave
 * a user id with a `userToken` (issued by your own back end).
 */
export interface ProfileSyncOptions {
  /** Default `true`. Off: this browser decides with its own history only. */
  enabled?: boolean;
  /** Default `<endpoint>/v1/profile`. */
  url?: string;
  /** How old the collector's part may get before it is fetched again. Default 600000. */
  refreshIntervalMs?: number;
  /** First retry after a failed fetch (doubling up to the refresh interval). Default 30000. */
  retryMs?: number;
}

/** An artifact shipped with the page (the second argument of `createClient`). */
export interface RulesOptions {
  /**
   * A string is used byte for byte (what a signature covers); an object is
   * `JSON.stringify`'d, so it is only usable unsigned. Used at start unless a
   * cached artifact is already in use.
   */
  artifact?: string | object;
  /** Base64 of the artifact's detached Ed25519 signature. */
  signature?: string;
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
  consent?: ConsentOptions;
  identity?: IdentityOptions;
  /** The rules artifact for on-device decisions. */
  rules?: RulesConfig;
  profile?: ProfileOptions;
  /** Fetching the person's profile from the collector (see `identify`'s `userToken`). */
  profileSync?: ProfileSyncOptions;
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
  /** Keep the device record in a first-party cookie shared by the site's subdomains. Default `true`. */
  cookie?: boolean;
  /** Default `tl_did`. */
  cookieName?: string;
  /** `auto` (default): the registrable domain, found by probing; or an explicit domain. */
  cookieDomain?: string;
  /** Take consent from an IAB TCF CMP on the page (`window.__tcfapi`). Default `true`. */
  tcfApi?: boolean;
  /**
   * Where the `.wasm` comes from: a URL (default: `sdk_wasm_bg.wasm` beside
   * this module, resolved from `import.meta.url`), or its bytes or a
   * compiled module for environments that cannot serve it.
   */
  wasm?: string | URL | BufferSource | WebAssembly.Module;
  /**
   * Where the JavaScript build of the core (the fallback on pages whose
   * CSP forbids WebAssembly) is imported from. Default: `sdk_wasm_js.js`
   * beside this module. The tag-manager script sets it beside itself.
   */
  jsEngine?: string | URL;
}

export type Properties = Record<string, unknown>;

/** Browser-only options; the keys also accepted in `ClientOptions` may be given here instead. */
export interface BrowserOptions extends Pick<ClientOptions, (typeof WEB_KEYS)[number]> {
  /** An inline (bundled) rules artifact. */
  rules?: RulesOptions;
}

/** One offer to show, from `decide`. Hand it back to `displayed`/`clicked` as is. */
export interface Decision {
  decisionId: string;
  placement: string;
  offerId: string;
  /** The offer's content from the artifact, parsed; the SDK never interprets it. */
  content: unknown;
  experimentId?: string;
  variantId?: string;
  /** The placement's default offer (no personalization consent, held out, or nothing qualified). */
  isDefault: boolean;
}

export interface DecideOptions {
  /** How many decisions (slots) are wanted. Default 1. */
  max?: number;
  /** Merged into what conditions read (`page`, `cart`, ...): a plain object. */
  context?: Properties;
}

/**
 * A `TypeError` from `decide`/`loadRules` carries a stable code. The
 * analytics-only build of the core (no on-device decisions) throws
 * `decide.unavailable` from `decide`, `decideMany`, `displayed` and `clicked`,
 * and `rules.unavailable` from `loadRules`; there `ready()` resolves `false`.
 */
export type DecideErrorKind = 'decide.unknownPlacement' | 'decide.invalidContext' | 'decide.unavailable';
export type RulesErrorKind =
  | 'rules.publicKey' | 'rules.url' | 'rules.signature' | 'rules.artifact' | 'rules.cache' | 'rules.unknownFetch'
  | 'rules.unavailable';

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
  beaconsRequeued: number;
  /** Events held in memory while `analytics` is pending. */
  held: number;
  /** Dropped because `analytics` was denied. */
  droppedConsent: number;
  /** Dropped from the held events when they outgrew `consent.maxHeldEvents`/`maxHeldBytes`. */
  droppedHeldFull: number;
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
  /** TC strings from the page's CMP that could not be decoded. */
  tcfRefused: number;
  /** Internal errors contained by the wrapper (should stay 0). */
  contained: number;
}

export interface Session {
  /** The start time in milliseconds, as sent in `context.sessionId`. */
  id: number;
  start: number;
  lastActivity: number;
}

/** Who events are about now. */
export interface Identity {
  /** Sent as `anonymousId`; `null` until `analytics` is granted. */
  deviceId: string | null;
  deviceIdCreated: number | null;
  deviceIdExpires: number | null;
  userId: string | null;
  traits: Properties;
  /** Namespaced ids as sent (hashed where configured). */
  ids: Record<string, string>;
  session: Session | null;
}

/** Namespaced ids for `identify`: emails and phone numbers are normalised and hashed. */
export interface Ids {
  email?: string;
  phone?: string;
  crmId?: string;
  [namespace: string]: string | undefined;
}

/** The third argument of `identify`. */
export interface IdentifyOptions {
  /** Namespaced ids: emails and phone numbers are normalised and hashed. */
  ids?: Ids;
  /**
   * A token your back end issued for this user id (see the collector's
   * `/v1/profile`): with it the client fetches what the person did on their
   * other devices. Kept with the identity, never sent with events; a token
   * the collector refuses is dropped (`profileSyncRefused`).
   */
  userToken?: string;
}

/** What `on` can listen to, and what each listener receives. */
export interface ClientEvents {
  sessionStart: { sessionId: number };
  consentChange: Consent;
  /** A rules artifact is in use now. */
  rulesLoaded: { revision: string | null };
  /** An artifact was refused; the previous one (if any) stays in use. */
  rulesError: { kind: RulesErrorKind; message: string };
  /** The collector's profile of the person arrived and `decide` uses it; its audiences. */
  profileSync: { audiences: string[] };
  /**
   * The collector refused the user token (HTTP 401/403): decisions use this
   * browser's history only until `identify` brings a new token.
   */
  profileSyncRefused: { status: number };
}

export interface Client {
  /**
   * `'wasm'`, or `'js'` when the page's Content Security Policy (or the
   * browser) refused WebAssembly and the JavaScript build of the core runs.
   */
  readonly engine: Engine;
  /** Records an event; returns its messageId (undefined if the client is closed). */
  track(name: string, properties?: Properties): string | undefined;
  /** Records a page view of the current location. */
  page(name?: string, properties?: Properties): string | undefined;
  /**
   * Attaches a known user id, traits and namespaced ids to this browser;
   * any may be left out (`identify(undefined, traits)`), not all. With a
   * `userToken` the person's profile is fetched from the collector (a
   * `profileSync` event follows).
   */
  identify(userId?: string | null, traits?: Properties, options?: IdentifyOptions): string | undefined;
  /** Links `userId` with `previousId` (default: the current user id, else the device id). */
  alias(userId: string, previousId?: string): string | undefined;
  /** Logout: forgets the user id, traits, ids and session, and rotates the device id. */
  reset(): void;
  /** Applies consent choices (any subset of purposes); returns the consent now in force. */
  setConsent(choices: ConsentChoices): Consent | undefined;
  /** Applies an IAB TCF TC string; throws a `TypeError` for one that cannot be decoded. */
  setConsentTcf(tcString: string): Consent | undefined;
  getConsent(): Consent | undefined;
  getIdentity(): Identity | undefined;
  /** Calls `listener` after each such change, from a microtask; returns the function that stops it. */
  on<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): () => void;
  /** Sends what is queued; resolves when nothing more can be sent now. Never rejects. */
  flush(): Promise<void>;
  /** Flushes, stores what is left for the next page, and stops. Never rejects. */
  shutdown(): Promise<void>;
  stats(): Stats;
  /**
   * Resolves `true` as soon as a rules artifact is in use (at once if one
   * is), `false` if `timeoutMs` passes first or the client is shut down.
   * Never rejects.
   */
  ready(timeoutMs?: number): Promise<boolean>;
  /**
   * The offers for `placement` now: synchronous and offline. Returns `[]`
   * until an artifact is loaded (`await ready()` first). Throws a
   * `TypeError` with `kind` `decide.unknownPlacement` or
   * `decide.invalidContext`.
   */
  decide(placement: string, options?: DecideOptions): Decision[];
  /**
   * `decide` for several placements of a page at once: one context, one
   * pass over the audiences, one call into the core. Returns an object from
   * placement to its decisions (`{}` until an artifact is loaded); an unknown
   * placement throws as in `decide` and nothing is decided.
   */
  decideMany(placements: string[], options?: DecideOptions): Record<string, Decision[]>;
  /** The decision was shown: records `Offer Displayed`; `null` if this decision was reported already. */
  displayed(decision: Decision): string | null;
  /** The decision was clicked: records `Offer Clicked`; `null` if already reported. */
  clicked(decision: Decision): string | null;
  /**
   * Uses `artifact` now, replacing the one in use. Throws a `TypeError` with
   * `kind` (`rules.signature`, `rules.artifact`, ...) and keeps the previous
   * artifact when it is refused.
   */
  loadRules(artifact: string | object, signature?: string): boolean;
  /** Revalidates the artifact with its server now. */
  refreshRules(): void;
  /** The `revision` of the artifact in use. */
  rulesRevision(): string | null;
  /**
   * Fetches the person's profile from the collector now (say after a
   * purchase in the app), when it may be fetched at all; otherwise it is
   * refreshed every `profileSync.refreshIntervalMs`.
   */
  refreshProfile(): void;
}

const CORE_KEYS = [
  'endpoint', 'writeKey', 'batch', 'retry', 'queue', 'limits', 'consent', 'identity', 'rules', 'profile',
  'profileSync',
] as const;
const WEB_KEYS = [
  'storagePrefix', 'persist', 'compress', 'requestTimeoutMs', 'beaconOnHide',
  'cookie', 'cookieName', 'cookieDomain', 'tcfApi',
] as const;
const EVENTS: readonly (keyof ClientEvents)[] = [
  'sessionStart', 'consentChange', 'rulesLoaded', 'rulesError', 'profileSync', 'profileSyncRefused',
];

interface Core {
  engine: Engine;
  Threadline: typeof WasmThreadline;
}

let loading: Promise<Core> | undefined;

/**
 * Whether this page may compile WebAssembly: compiles the smallest valid
 * module (8 bytes, synchronously). A CSP without `'wasm-unsafe-eval'`
 * refuses it, so the `.wasm` is not even fetched then.
 */
function wasmAllowed(): boolean {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.Module !== 'function') return false;
  try {
    new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    return true;
  } catch {
    return false;
  }
}

/** The browser refused to compile or link the module (not a network failure). */
function compileRefused(e: unknown): boolean {
  if (typeof WebAssembly === 'object' && (e instanceof WebAssembly.CompileError || e instanceof WebAssembly.LinkError)) {
    return true;
  }
  return e instanceof EvalError || (e instanceof Error && (e.name === 'CompileError' || e.name === 'EvalError'));
}

async function loadEngine(source: ClientOptions['wasm'], jsEngine: ClientOptions['jsEngine']): Promise<Core> {
  if (wasmAllowed()) {
    try {
      await init({ module_or_path: source ?? new URL('./sdk_wasm_bg.wasm', import.meta.url) });
      return { engine: 'wasm', Threadline: WasmThreadline };
    } catch (e) {
      // A refusal the probe did not see (a policy on the wasm's own
      // response, a missing feature) is served by the JavaScript build;
      // a network error is the caller's to see and retry.
      if (!compileRefused(e)) throw e;
    }
  }
  const js: typeof import('./sdk_wasm_js.js') =
    jsEngine === undefined
      ? await import('./sdk_wasm_js.js')
      : await import(/* @vite-ignore */ /* webpackIgnore: true */ String(jsEngine));
  js.initJs();
  return { engine: 'js', Threadline: js.Threadline };
}

function loadCore(source: ClientOptions['wasm'], jsEngine: ClientOptions['jsEngine']): Promise<Core> {
  if (!loading) {
    loading = loadEngine(source, jsEngine).catch((e: unknown) => {
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

function serialise(what: string, value: object | undefined): string | undefined {
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

/** `decide` options checked before they reach the core: `[max, context JSON]`. */
function decideArgs(options: DecideOptions | undefined): [number | undefined, string | undefined] {
  if (options !== undefined && !isPlainObject(options)) {
    throw new TypeError('threadline: decide options must be a plain object ({ max, context })');
  }
  const max: unknown = options?.max;
  if (max !== undefined && !(typeof max === 'number' && Number.isInteger(max) && max >= 1 && max <= 0xffffffff)) {
    throw new RangeError('threadline: decide max must be a whole number >= 1');
  }
  let context: string | undefined;
  if (options?.context !== undefined) {
    if (!isPlainObject(options.context)) {
      throw kindError('decide.invalidContext', 'decide context must be a plain object');
    }
    try {
      context = JSON.stringify(options.context);
    } catch (e) {
      throw kindError('decide.invalidContext', `decide context cannot be serialised to JSON (${String(e)})`);
    }
  }
  return [max as number | undefined, context];
}

function kindError(kind: string, message: string): TypeError {
  const e = new TypeError(`threadline: ${message}`) as TypeError & { kind: string };
  e.kind = kind;
  return e;
}

/** An artifact as text: a string byte for byte, an object as JSON. */
function artifactText(artifact: unknown, what: string): string {
  if (typeof artifact === 'string') return artifact;
  if (artifact === null || typeof artifact !== 'object') {
    throw kindError('rules.artifact', `${what} must be a string or an object`);
  }
  try {
    return JSON.stringify(artifact);
  } catch (e) {
    throw kindError('rules.artifact', `${what} cannot be serialised to JSON (${String(e)})`);
  }
}

function isArgumentError(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError;
}

/**
 * Creates a client. Rejects with a `TypeError` for invalid options and with
 * an `Error` when there is no browser (server-side rendering) or the
 * WebAssembly module cannot load.
 */
export async function createClient(options: ClientOptions, browser?: BrowserOptions): Promise<Client> {
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
  if (browser !== undefined) {
    if (!isPlainObject(browser)) throw new TypeError('threadline: createClient browser options must be an object');
    for (const k of WEB_KEYS) if (browser[k] !== undefined) web[k] = browser[k];
    const rules = browser.rules;
    if (rules !== undefined) {
      if (!isPlainObject(rules)) throw new TypeError('threadline: browser options rules must be an object');
      const inline: Record<string, string> = {};
      if (rules.artifact !== undefined) inline.artifact = artifactText(rules.artifact, 'rules.artifact');
      if (rules.signature !== undefined) inline.signature = requireString('rules.signature', rules.signature);
      web.rules = inline;
    }
  }

  const engine = await loadCore(options.wasm, options.jsEngine);
  const tl = await engine.Threadline.create(JSON.stringify(core), JSON.stringify(web));
  return new WebClient(tl, engine.engine);
}

type Listener = (payload: never) => void;

class WebClient implements Client {
  private tl: Threadline | undefined;
  private lastHref: string;
  private contained = 0;
  private listeners: Map<string, Set<Listener>> | undefined;

  private readonly core: Engine;

  constructor(tl: Threadline, engine: Engine) {
    this.tl = tl;
    this.core = engine;
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

  get engine(): Engine {
    return this.core;
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

  identify(userId?: string | null, traits?: Properties, options?: IdentifyOptions): string | undefined {
    if (userId !== undefined && userId !== null) requireString('userId', userId);
    const json = serialise('traits', traits);
    if (options !== undefined && !isPlainObject(options)) {
      throw new TypeError('threadline: identify options must be a plain object ({ ids, userToken })');
    }
    const token = options?.userToken === undefined ? undefined : requireString('userToken', options.userToken);
    const ids = options?.ids;
    if (ids !== undefined) {
      if (!isPlainObject(ids)) throw new TypeError('threadline: ids must be a plain object');
      for (const [k, v] of Object.entries(ids)) {
        if (v !== undefined) requireString(`ids.${k}`, v);
      }
    }
    const idsJson = serialise('ids', ids);
    return this.call((tl) => {
      this.followLocation(tl);
      return tl.identify(userId ?? undefined, json, idsJson, token);
    });
  }

  alias(userId: string, previousId?: string): string | undefined {
    requireString('userId', userId);
    if (previousId !== undefined) requireString('previousId', previousId);
    return this.call((tl) => {
      this.followLocation(tl);
      return tl.alias(userId, previousId);
    });
  }

  reset(): void {
    this.call((tl) => tl.reset());
  }

  setConsent(choices: ConsentChoices): Consent | undefined {
    if (!isPlainObject(choices)) {
      throw new TypeError('threadline: setConsent needs an object of purposes, e.g. { analytics: "granted" }');
    }
    const json = JSON.stringify(choices);
    const out = this.call((tl) => tl.setConsent(json));
    return out ? (JSON.parse(out) as Consent) : undefined;
  }

  setConsentTcf(tcString: string): Consent | undefined {
    requireString('TC string', tcString);
    const out = this.call((tl) => tl.setConsentTcf(tcString));
    return out ? (JSON.parse(out) as Consent) : undefined;
  }

  getConsent(): Consent | undefined {
    const json = this.call((tl) => tl.getConsent());
    return json ? (JSON.parse(json) as Consent) : undefined;
  }

  getIdentity(): Identity | undefined {
    const json = this.call((tl) => tl.getIdentity());
    return json ? (JSON.parse(json) as Identity) : undefined;
  }

  on<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): () => void {
    if (!EVENTS.includes(event)) {
      throw new TypeError(`threadline: unknown event "${String(event)}"; expected one of ${EVENTS.join(', ')}`);
    }
    if (typeof listener !== 'function') throw new TypeError('threadline: listener must be a function');
    if (!this.listeners) {
      this.listeners = new Map();
      // Notices come from a microtask after the change, never from inside a call.
      this.call((tl) => tl.onNotice((kind: string, json: string) => this.emit(kind, json)));
    }
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const l = listener as Listener;
    set.add(l);
    return () => {
      set.delete(l);
    };
  }

  private emit(kind: string, json: string): void {
    const set = this.listeners?.get(kind);
    if (!set || set.size === 0) return;
    const payload = JSON.parse(json) as never;
    for (const l of [...set]) {
      try {
        l(payload);
      } catch (e) {
        // The host's bug: report it as the host's uncaught error, and go on.
        queueMicrotask(() => {
          throw e;
        });
      }
    }
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

  ready(timeoutMs?: number): Promise<boolean> {
    if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0)) {
      throw new TypeError('threadline: ready timeoutMs must be a number >= 0');
    }
    let p: Promise<unknown> | undefined;
    try {
      p = this.call((tl) => tl.ready(timeoutMs) as Promise<unknown>);
    } catch {
      this.contained++;
    }
    if (!p) return Promise.resolve(false);
    return p.then((v) => v === true, () => false);
  }

  decide(placement: string, options?: DecideOptions): Decision[] {
    requireString('placement', placement);
    const [max, context] = decideArgs(options);
    const json = this.call((tl) => {
      this.followLocation(tl);
      return tl.decide(placement, max, context);
    });
    return json ? (JSON.parse(json) as Decision[]) : [];
  }

  decideMany(placements: string[], options?: DecideOptions): Record<string, Decision[]> {
    if (!Array.isArray(placements)) throw new TypeError('threadline: placements must be an array of strings');
    placements.forEach((p, i) => requireString(`placements[${i}]`, p));
    const [max, context] = decideArgs(options);
    const json = this.call((tl) => {
      this.followLocation(tl);
      return tl.decideMany(placements, max, context);
    });
    return json ? (JSON.parse(json) as Record<string, Decision[]>) : {};
  }

  private feedback(decision: Decision, click: boolean): string | null {
    if (!isPlainObject(decision)) {
      throw new TypeError('threadline: decision must be a Decision object as decide() returned it');
    }
    const json = serialise('decision', decision) as string;
    const id = this.call((tl) => (click ? tl.clicked(json) : tl.displayed(json)));
    return id ?? null;
  }

  displayed(decision: Decision): string | null {
    return this.feedback(decision, false);
  }

  clicked(decision: Decision): string | null {
    return this.feedback(decision, true);
  }

  loadRules(artifact: string | object, signature?: string): boolean {
    const text = artifactText(artifact, 'artifact');
    if (signature !== undefined) requireString('signature', signature);
    return this.call((tl) => tl.loadRules(text, signature)) ?? false;
  }

  refreshRules(): void {
    this.call((tl) => tl.refreshRules());
  }

  rulesRevision(): string | null {
    return this.call((tl) => tl.rulesRevision()) ?? null;
  }

  refreshProfile(): void {
    this.call((tl) => tl.refreshProfile());
  }

}
