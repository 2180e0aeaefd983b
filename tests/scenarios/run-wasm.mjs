// The wasm runner of the cross-platform scenario files (the contract is
// ./README.md). Runs every ./*.json against the core compiled to
// WebAssembly (sdk-wasm's `ScenarioCore`, built with the `scenario` feature
// by scripts/scenarios-wasm.sh), in Node, and writes one transcript per
// scenario to target/scenarios/wasm/<file name>.txt so that the results can
// be compared line for line with the other runners.
//
// Written from the README, not ported from the native runner: a second
// reading of the contract is part of what this runner checks. Parsing is
// strict: an unknown key, op, reply or matcher, a malformed value or an
// unbound symbol fails the scenario.
//
//   node tests/scenarios/run-wasm.mjs [--harness DIR] [--scenarios DIR] [--out DIR]
// defaults: target/scenario-wasm, this directory, target/scenarios/wasm
// (under $CARGO_TARGET_DIR when set, as the other runners write theirs).

import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const args = parseArgs(process.argv.slice(2));
const harnessDir = resolve(args.harness ?? join(root, "target", "scenario-wasm"));
const scenarioDir = resolve(args.scenarios ?? here);
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, "target");
const transcriptDir = resolve(args.out ?? join(targetDir, "scenarios", "wasm"));

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]?.replace(/^--/, "");
    if (!["harness", "scenarios", "out"].includes(k) || argv[i + 1] === undefined) {
      console.error(`usage: run-wasm.mjs [--harness DIR] [--scenarios DIR] [--out DIR]; got ${argv[i]}`);
      process.exit(2);
    }
    out[k] = argv[i + 1];
  }
  return out;
}

const DEFAULT_START = 1795512600000; // 2026-11-24T09:30:00Z
const DEFAULT_MAX_BODY = 65536;
/** A pump that keeps getting uploads this often is a runaway, not a scenario. */
const MAX_PUMP = 10000;
/** The error kinds of the README's table: the only ones a step may expect. */
const ERROR_KINDS = new Set([
  "event.empty", "event.nameTooLong", "event.notAnObject", "event.tooDeep", "event.tooLarge",
  "identity.notAnObject", "identity.badNamespace", "identity.badValue", "identity.badEmail",
  "identity.badPhone", "identity.phoneNeedsCountryCode",
  "consent.invalid", "consent.tcf",
  "decide.notReady", "decide.unknownPlacement", "decide.invalidContext",
  "rules.publicKey", "rules.url", "rules.signature", "rules.artifact", "rules.cache", "rules.unknownFetch",
  // profileFetch: a refused answer (SyncError::kind(), ProfileError::kind() within it)
  "sync.unauthorized", "sync.unknownFetch", "sync.url",
  "profile.corrupt", "profile.version", "profile.tooLarge", "profile.traitsTooLarge", "profile.wrongUser",
]);
const NOTICES = new Set([
  "sessionStarted", "consentChanged", "rulesLoaded", "rulesRejected", "profileSynced", "profileSyncRefused",
]);
/** The store's slots, in the order a `take_persist` is applied. */
const SLOTS = ["queue", "identity", "profile", "rules", "device"];
/** Slots whose removal is logged only when they held something. */
const QUIET_REMOVE = new Set(["profile", "rules"]);
const emptyStore = () => ({ device: null, identity: null, queue: null, profile: null, rules: null });

/** A scenario failure: the message says what differed. */
class Failure extends Error {}
const fail = (msg) => {
  throw new Failure(msg);
};

// ---- values -------------------------------------------------------------

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const show = (v) => (v === undefined ? "absent" : JSON.stringify(v));
const sha256 = (data) => createHash("sha256").update(data).digest();
const sha256Hex = (data) => sha256(data).toString("hex");

/** A whole, non-negative number that a JS number holds exactly. */
function isCount(v) {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Deep JSON equality: key order does not matter, array order does. */
function jsonEqual(a, b) {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * The keys of one JSON object, taken one by one; `done()` fails on any key
 * left over, so a misspelt key can never skip a check.
 */
class Keys {
  constructor(value, what) {
    if (!isObject(value)) fail(`${what}: expected an object, got ${show(value)}`);
    this.map = new Map(Object.entries(value));
    this.what = what;
  }
  has(k) {
    return this.map.has(k);
  }
  take(k) {
    const v = this.map.get(k);
    this.map.delete(k);
    return v;
  }
  req(k) {
    if (!this.map.has(k)) fail(`${this.what}: "${k}" is required`);
    return this.take(k);
  }
  str(k, required = false) {
    if (!this.map.has(k)) return required ? fail(`${this.what}: "${k}" is required`) : undefined;
    const v = this.take(k);
    if (typeof v !== "string") fail(`${this.what}: "${k}" must be a string, got ${show(v)}`);
    return v;
  }
  count(k, required = false) {
    if (!this.map.has(k)) return required ? fail(`${this.what}: "${k}" is required`) : undefined;
    const v = this.take(k);
    if (!isCount(v)) fail(`${this.what}: "${k}" must be a whole number >= 0, got ${show(v)}`);
    return v;
  }
  bool(k, required = false) {
    if (!this.map.has(k)) return required ? fail(`${this.what}: "${k}" is required`) : undefined;
    const v = this.take(k);
    if (typeof v !== "boolean") fail(`${this.what}: "${k}" must be true or false, got ${show(v)}`);
    return v;
  }
  list(k) {
    if (!this.map.has(k)) return undefined;
    const v = this.take(k);
    if (!Array.isArray(v)) fail(`${this.what}: "${k}" must be a list, got ${show(v)}`);
    return v;
  }
  done() {
    if (this.map.size > 0) fail(`${this.what}: unknown key(s) ${[...this.map.keys()].join(", ")}`);
  }
}

/** Walks objects by key and arrays by decimal index; undefined when absent. */
function atPath(doc, path) {
  let cur = doc;
  for (const part of path.split(".")) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(part)) return undefined;
      cur = cur[Number(part)];
    } else if (isObject(cur)) {
      cur = Object.hasOwn(cur, part) ? cur[part] : undefined;
    } else {
      return undefined;
    }
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** An event's label for `names`: `event`, else `name`, else `type`. */
function label(e) {
  for (const k of ["event", "name", "type"]) {
    if (typeof e?.[k] === "string") return e[k];
  }
  return "?";
}

// ---- replies ------------------------------------------------------------

/**
 * A collector's answer: `{hold}` or `{outcome, status, retryAfter, jitter}`
 * with `outcome` "status" or "network".
 */
function parseReply(v, what, mayHold) {
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 100 || v > 599) fail(`${what}: ${v} is not an HTTP status`);
    return { outcome: "status", status: v, retryAfter: undefined, jitter: 0 };
  }
  if (v === "network") return { outcome: "network", status: undefined, retryAfter: undefined, jitter: 0 };
  if (!isObject(v)) fail(`${what}: unknown reply ${show(v)}`);
  const o = new Keys(v, what);
  if (o.has("hold")) {
    if (!mayHold) fail(`${what}: cannot hold here`);
    const hold = o.str("hold");
    o.done();
    return { hold };
  }
  const jitter = o.count("jitter") ?? 0;
  if (jitter > 0xffffffff) fail(`${what}: jitter must fit in 32 bits, got ${jitter}`);
  if (o.has("network")) {
    if (o.bool("network") !== true) fail(`${what}: "network" must be true`);
    o.done();
    return { outcome: "network", status: undefined, retryAfter: undefined, jitter };
  }
  const status = o.count("status", true);
  if (status < 100 || status > 599) fail(`${what}: ${status} is not an HTTP status`);
  const retryAfter = o.str("retryAfter");
  o.done();
  return { outcome: "status", status, retryAfter, jitter };
}

// ---- one scenario --------------------------------------------------------

class Run {
  constructor(harness, file) {
    this.ScenarioCore = harness.ScenarioCore;
    this.file = file;
    this.transcript = [];
    this.stepIndex = -1;
    this.core = null;
  }

  /** Parses the top level and creates the client (step index -1). */
  begin(text) {
    let v;
    try {
      v = JSON.parse(text);
    } catch (e) {
      fail(`not valid JSON: ${e.message}`);
    }
    const o = new Keys(v, "scenario");
    o.str("name", true);
    o.str("description");
    this.seed = o.str("seed", true);
    this.start = o.count("start") ?? DEFAULT_START;
    const config = o.req("config");
    if (typeof config === "string") this.config = config;
    else if (isObject(config)) this.config = JSON.stringify(config);
    else fail(`scenario: "config" must be an object or a string, got ${show(config)}`);
    this.steps = o.list("steps") ?? fail(`scenario: "steps" is required`);
    o.done();

    this.draws = 0;
    this.now = this.start;
    this.store = emptyStore();
    this.held = new Map();
    this.symbols = new Map();
    this.decisions = new Map();
    this.clearLogs();
    this.core = this.newCore();
    this.settle(false);
  }

  clearLogs() {
    this.uploads = [];
    this.notices = [];
    this.storeOps = [];
    this.wiped = false;
  }

  log(line) {
    this.transcript.push(`${this.stepIndex} ${line}`);
  }

  /** The next draw: the first 16 bytes of SHA-256("<seed>:<n>"). */
  draw() {
    const bytes = sha256(`${this.seed}:${this.draws}`).subarray(0, 16);
    this.draws += 1;
    return new Uint8Array(bytes);
  }

  /** A harness call that the scenario does not expect to fail. */
  harness(what, f) {
    try {
      return f();
    } catch (e) {
      if (e instanceof Failure) throw e;
      fail(`${what} failed: ${e?.kind ?? "no kind"}: ${e?.message ?? e}`);
    }
  }

  newCore() {
    const random = this.draw();
    return this.harness("creating the client", () => new this.ScenarioCore(this.config, this.now, random));
  }

  /** A binding's storage and notice work after a call. */
  settle(force) {
    const p = this.harness("take_persist", () => this.core.take_persist(this.now, force));
    if (p.wipe) {
      this.wiped = true;
      this.store = emptyStore();
      this.storeOps.push("wipe");
      this.log("store wipe");
    }
    for (const slot of SLOTS) {
      const op = p[slot];
      if (op === null || op === undefined) continue;
      let entry;
      if (op.op === "write" && op.bytes instanceof Uint8Array) {
        this.store[slot] = op.bytes;
        entry = `write:${slot}`;
      } else if (op.op === "remove") {
        const held = this.store[slot] !== null;
        this.store[slot] = null;
        if (!held && QUIET_REMOVE.has(slot)) continue;
        entry = `remove:${slot}`;
      } else {
        fail(`take_persist: unknown ${slot} operation ${show(op)}`);
      }
      this.storeOps.push(entry);
      this.log(`store ${entry}`);
    }
    for (const n of this.harness("take_notices", () => this.core.take_notices())) {
      if (!NOTICES.has(n)) fail(`take_notices: unknown notice ${show(n)}`);
      this.notices.push(n);
      this.log(`notice ${n}`);
    }
  }

  /** Logs an upload or beacon the core handed out. */
  record(u) {
    if (!(u.body instanceof Uint8Array)) fail(`upload ${u.id}: the body is not bytes`);
    let body;
    try {
      body = JSON.parse(Buffer.from(u.body).toString("utf8"));
    } catch (e) {
      fail(`upload ${u.id}: the body is not JSON: ${e.message}`);
    }
    const batch = body?.batch;
    if (!Array.isArray(batch)) fail(`upload ${u.id}: the body has no "batch" list`);
    if (batch.length !== u.events) fail(`upload ${u.id}: ${batch.length} event(s) in the body, core said ${u.events}`);
    this.uploads.push({ transport: u.transport, events: batch });
    this.log(`upload ${u.transport} ${batch.length} ${sha256Hex(u.body)}`);
  }

  finish(id, reply) {
    this.harness(`upload_finished(${id})`, () =>
      this.core.upload_finished(id, reply.outcome, reply.status, reply.retryAfter, this.now, reply.jitter),
    );
  }

  bind(name, value) {
    if (this.symbols.has(name)) fail(`symbol "${name}" is bound twice`);
    this.symbols.set(name, value);
  }

  symbol(name, what) {
    if (typeof name !== "string") fail(`${what}: a symbol is a string, got ${show(name)}`);
    if (!this.symbols.has(name)) fail(`${what}: unbound symbol "${name}"`);
    return this.symbols.get(name);
  }

  /**
   * A call that draws and may be refused: returns the error kind, or
   * undefined on success (binding the messageId to `as`).
   */
  drawingCall(name, call) {
    const random = this.draw();
    try {
      const id = call(random);
      if (name !== undefined) {
        if (typeof id !== "string") fail(`"as" given but the call returned no messageId`);
        this.bind(name, id);
      }
      return undefined;
    } catch (e) {
      if (e instanceof Failure) throw e;
      if (ERROR_KINDS.has(e?.kind)) return e.kind;
      fail(`harness error: ${e?.kind ?? "no kind"}: ${e?.message ?? e}`);
    }
  }

  step(v) {
    const o = new Keys(v, "step");
    const op = o.str("op", true);
    o.what = `step "${op}"`;
    const c = this.core;
    const now = this.now;
    const opt = (k) => o.str(k) ?? null;
    let expectError;
    let gotError;
    const drawing = (f) => {
      expectError = o.str("error");
      if (expectError !== undefined && !ERROR_KINDS.has(expectError)) {
        fail(`${o.what}: unknown error kind "${expectError}"`);
      }
      return f();
    };
    switch (op) {
      case "track":
        gotError = drawing(() => {
          const [event, props, as] = [o.str("event", true), opt("properties"), o.str("as")];
          return this.drawingCall(as, (r) => c.track(event, props, now, r));
        });
        break;
      case "page":
        gotError = drawing(() => {
          const [name, props, as] = [opt("name"), opt("properties"), o.str("as")];
          return this.drawingCall(as, (r) => c.page(name, props, now, r));
        });
        break;
      case "screen":
        gotError = drawing(() => {
          const [name, props, as] = [o.str("name", true), opt("properties"), o.str("as")];
          return this.drawingCall(as, (r) => c.screen(name, props, now, r));
        });
        break;
      case "identify":
        gotError = drawing(() => {
          const [user, traits, ids, token, as] = [opt("userId"), opt("traits"), opt("ids"), opt("userToken"), o.str("as")];
          return this.drawingCall(as, (r) => c.identify(user, traits, ids, token, now, r));
        });
        break;
      case "alias":
        gotError = drawing(() => {
          const [user, prev, as] = [o.str("userId", true), opt("previousId"), o.str("as")];
          return this.drawingCall(as, (r) => c.alias(user, prev, now, r));
        });
        break;
      case "reset":
        gotError = drawing(() => this.drawingCall(undefined, (r) => c.reset(now, r)));
        break;
      case "setConsent":
        gotError = drawing(() => {
          const consent = o.str("consent", true);
          return this.drawingCall(undefined, (r) => c.set_consent(consent, now, r));
        });
        break;
      case "setConsentTcf":
        gotError = drawing(() => {
          const tc = o.str("tcString", true);
          return this.drawingCall(undefined, (r) => c.set_consent_tcf(tc, now, r));
        });
        break;
      case "setGpc":
        gotError = drawing(() => {
          const on = o.bool("on", true);
          return this.drawingCall(undefined, (r) => c.set_gpc(on, now, r));
        });
        break;
      case "loadRules":
        gotError = this.loadRules(o, (e) => (expectError = e));
        break;
      case "decide":
        gotError = this.decide(o, (e) => (expectError = e));
        break;
      case "displayed":
      case "clicked":
        gotError = this.feedback(op, o, (e) => (expectError = e));
        break;
      case "rulesFetch":
        gotError = this.rulesFetch(o, (e) => (expectError = e));
        break;
      case "profileFetch":
        gotError = this.profileFetch(o, (e) => (expectError = e));
        break;
      case "refreshProfile":
        c.refresh_profile();
        break;
      case "flush":
        c.flush();
        break;
      case "networkAvailable":
        c.network_available();
        break;
      case "advance":
        this.now += o.count("ms", true);
        if (!Number.isSafeInteger(this.now)) fail(`advance: the clock passed 2^53`);
        break;
      case "pump":
        this.pump(o);
        break;
      case "finish": {
        const name = o.str("upload", true);
        const reply = parseReply(o.req("reply"), "finish: reply", false);
        if (!this.held.has(name)) fail(`finish: no held upload "${name}"`);
        const id = this.held.get(name);
        this.held.delete(name);
        this.finish(id, reply);
        break;
      }
      case "hide":
        this.hide(o);
        break;
      case "restart":
        this.restart();
        break;
      case "expect":
        this.expect(o);
        // Before the storage work that follows the step, as in every runner.
        this.log("expect ok");
        break;
      default:
        fail(`unknown op "${op}"`);
    }
    o.done();
    if (op !== "hide") this.settle(false);
    if (expectError !== gotError) {
      if (expectError === undefined) fail(`unexpected error "${gotError}"`);
      fail(`expected error "${expectError}", got ${gotError === undefined ? "success" : `"${gotError}"`}`);
    }
  }

  /** Reads the step's `error` (a known kind) through `set`. */
  errorKey(o, set) {
    const e = o.str("error");
    if (e !== undefined && !ERROR_KINDS.has(e)) fail(`${o.what}: unknown error kind "${e}"`);
    set(e);
  }

  /** Runs a core call that may be refused with a README kind: [value] or [undefined, kind]. */
  refusable(f) {
    try {
      return [f()];
    } catch (e) {
      if (e instanceof Failure) throw e;
      if (ERROR_KINDS.has(e?.kind)) return [undefined, e.kind];
      fail(`harness error: ${e?.kind ?? "no kind"}: ${e?.message ?? e}`);
    }
  }

  loadRules(o, setError) {
    this.errorKey(o, setError);
    const artifact = o.req("artifact");
    let text;
    if (typeof artifact === "string") text = artifact;
    else if (isObject(artifact)) text = JSON.stringify(artifact);
    else fail(`loadRules: "artifact" must be an object or a string, got ${show(artifact)}`);
    const signature = o.str("signature") ?? null;
    const replace = o.bool("replace") ?? true;
    const inUse = o.bool("inUse");
    const [used, kind] = this.refusable(() => this.core.load_rules(text, signature, replace, this.now));
    if (kind === undefined && inUse !== undefined && used !== inUse) {
      fail(`loadRules: expected inUse ${inUse}, got ${used}`);
    }
    return kind;
  }

  decide(o, setError) {
    this.errorKey(o, setError);
    const placement = o.str("placement", true);
    const max = o.count("max") ?? 1;
    const context = o.str("context") ?? null;
    let utc = 0;
    if (o.has("utcOffsetMinutes")) {
      utc = o.take("utcOffsetMinutes");
      if (!Number.isSafeInteger(utc)) fail(`decide: "utcOffsetMinutes" must be a whole number, got ${show(utc)}`);
    }
    const as = o.str("as");
    const want = o.has("expect") ? o.take("expect") : undefined;
    const random = this.draw();
    const [text, kind] = this.refusable(() => this.core.decide(placement, max, context, utc, this.now, random));
    if (kind !== undefined) {
      if (want !== undefined) fail(`decide: refused (${kind}) but "expect" given`);
      return kind;
    }
    const docs = JSON.parse(text);
    for (const d of docs) {
      const id = (k) => (typeof d[k] === "string" ? d[k] : "-");
      this.log(`decision ${id("offerId")} ${id("experimentId")} ${id("variantId")} ${d.isDefault ? "default" : "offer"} ${id("decisionId")}`);
    }
    if (as !== undefined) {
      docs.forEach((d, i) => {
        this.bind(`${as}.${i}`, d.decisionId);
        this.decisions.set(`${as}.${i}`, JSON.stringify(d));
      });
    }
    if (!Array.isArray(want)) fail(`decide: "expect" must be a list, got ${show(want)}`);
    if (want.length !== docs.length) {
      fail(`decide: expected ${want.length} decision(s), got ${show(docs.map((d) => d.offerId))}`);
    }
    want.forEach((w0, i) => {
      const what = `decision ${i}`;
      const w = new Keys(w0, what);
      const fields = { offerId: w.str("offerId", true), isDefault: w.bool("isDefault", true) };
      fields.experimentId = w.has("experimentId") ? w.take("experimentId") : null;
      fields.variantId = w.has("variantId") ? w.take("variantId") : null;
      if (w.has("decisionId")) fields.decisionId = w.take("decisionId");
      w.done();
      // In key order, as the native runner's serde map walks them.
      const sorted = Object.fromEntries(Object.keys(fields).sort().map((k) => [k, fields[k]]));
      this.matchFields(what, docs[i], sorted);
    });
    return undefined;
  }

  feedback(op, o, setError) {
    this.errorKey(o, setError);
    const sym = o.str("decision", true);
    const want = o.str("expect", true);
    const as = o.str("as");
    if (want !== "recorded" && want !== "duplicate") fail(`${op}: "expect" is "recorded" or "duplicate"`);
    if (!this.decisions.has(sym)) fail(`${op}: unknown decision "${sym}"`);
    const d = this.decisions.get(sym);
    const random = this.draw();
    const [id, kind] = this.refusable(() =>
      op === "displayed" ? this.core.displayed(d, this.now, random) : this.core.clicked(d, this.now, random),
    );
    if (kind !== undefined) return kind;
    const recorded = typeof id === "string";
    this.log(`${op} ${recorded ? id : "duplicate"}`);
    if ((want === "recorded") !== recorded) fail(`${op}: expected ${want}, got ${recorded ? "recorded" : "duplicate"}`);
    if (recorded && as !== undefined) this.bind(as, id);
    return undefined;
  }

  /**
   * Performs the rules request due (a follow-up first) with the scripted
   * reply, mapped as the mobile API maps an HTTP outcome.
   */
  rulesFetch(o, setError) {
    this.errorKey(o, setError);
    if (!o.has("expect")) fail(`rulesFetch: "expect" is required`);
    const want = o.take("expect");
    const reply = o.has("reply") ? o.take("reply") : undefined;
    let fetch = this.rulesFollowUp;
    this.rulesFollowUp = null;
    if (fetch === null || fetch === undefined) {
      fetch = this.harness("next_rules_fetch", () => this.core.next_rules_fetch(this.now));
    }
    if (fetch === null || fetch === undefined) {
      this.log("rulesFetch none");
      if (want !== null) fail(`rulesFetch: expected ${show(want)}, no request was due`);
      if (reply !== undefined) fail(`rulesFetch: "reply" given but no request was due`);
      return undefined;
    }
    this.log(`rulesFetch ${fetch.url} ${fetch.etag ?? "-"} ${fetch.signature ? "signature" : "artifact"}`);
    if (want === null) fail(`rulesFetch: expected none, got a request for ${fetch.url}`);
    const w = new Keys(want, "rulesFetch expect");
    const fields = {};
    if (w.has("etag")) fields.etag = w.take("etag");
    else fields.etag = null;
    fields.signature = w.bool("signature") ?? false;
    if (w.has("url")) fields.url = w.take("url");
    w.done();
    this.matchFields("rulesFetch", { url: fetch.url, etag: fetch.etag, signature: fetch.signature }, fields);
    if (reply === undefined) fail(`rulesFetch: "reply" is required`);
    const r = new Keys(reply, "rulesFetch reply");
    const network = r.bool("network") ?? false;
    const status = r.count("status");
    const etag = r.str("etag") ?? null;
    let body = null;
    if (r.has("artifact")) {
      const a = r.take("artifact");
      if (typeof a === "string") body = a;
      else if (isObject(a)) body = JSON.stringify(a);
      else fail(`rulesFetch: "artifact" must be an object or a string, got ${show(a)}`);
    }
    const jitter = r.count("jitter") ?? 0;
    if (jitter > 0xffffffff) fail(`rulesFetch: jitter must fit in 32 bits`);
    r.done();
    if (network === (status !== undefined)) fail(`rulesFetch: a reply is a status or a network error`);
    let args;
    if (status === 304) args = ["notModified", null, null, null];
    else if (status === 200 && body !== null) args = ["body", null, etag, new TextEncoder().encode(body)];
    else args = ["failed", status ?? null, null, null];
    const [next, kind] = this.refusable(() => this.core.rules_fetched(fetch.id, ...args, this.now, jitter));
    if (kind !== undefined) return kind;
    this.rulesFollowUp = next;
    return undefined;
  }

  /**
   * Performs the profile request due with the scripted reply: 200 with a
   * `profile` is the body, anything else a failure (no status for a network
   * error).
   */
  profileFetch(o, setError) {
    this.errorKey(o, setError);
    if (!o.has("expect")) fail(`profileFetch: "expect" is required`);
    const want = o.take("expect");
    const reply = o.has("reply") ? o.take("reply") : undefined;
    const fetch = this.harness("next_profile_fetch", () => this.core.next_profile_fetch(this.now));
    if (fetch === null || fetch === undefined) {
      this.log("profileFetch none");
      if (want !== null) fail(`profileFetch: expected ${show(want)}, no request was due`);
      if (reply !== undefined) fail(`profileFetch: "reply" given but no request was due`);
      return undefined;
    }
    this.log(`profileFetch ${fetch.url} ${fetch.token}`);
    if (want === null) fail(`profileFetch: expected none, got a request for ${fetch.url}`);
    const w = new Keys(want, "profileFetch expect");
    const fields = {};
    if (w.has("url")) {
      const u = w.take("url");
      if (typeof u !== "string") fail(`profileFetch: "url" must be a string, got ${show(u)}`);
      const device = JSON.parse(this.harness("identity_view", () => this.core.identity_view())).deviceId ?? "";
      fields.url = u.replaceAll("{deviceId}", device);
    }
    if (w.has("token")) fields.token = w.take("token");
    w.done();
    this.matchFields("profileFetch", { url: fetch.url, token: fetch.token }, fields);
    if (reply === undefined) fail(`profileFetch: "reply" is required`);
    const r = new Keys(reply, "profileFetch reply");
    const network = r.bool("network") ?? false;
    const status = r.count("status");
    let body = null;
    if (r.has("profile")) {
      const p = r.take("profile");
      if (typeof p === "string") body = p;
      else if (isObject(p)) body = JSON.stringify(p);
      else fail(`profileFetch: "profile" must be an object or a string, got ${show(p)}`);
    }
    const jitter = r.count("jitter") ?? 0;
    if (jitter > 0xffffffff) fail(`profileFetch: jitter must fit in 32 bits`);
    r.done();
    if (network === (status !== undefined)) fail(`profileFetch: a reply is a status or a network error`);
    if (status !== undefined && status > 0xffff) fail(`profileFetch: bad status ${status}`);
    const bytes = status === 200 && body !== null ? new TextEncoder().encode(body) : null;
    const [, kind] = this.refusable(() =>
      this.core.profile_fetched(fetch.id, status ?? null, bytes, this.now, jitter),
    );
    return kind;
  }

  pump(o) {
    const replies = (o.list("replies") ?? []).map((r, i) => parseReply(r, `pump: reply ${i}`, true));
    const all = o.has("all") ? parseReply(o.take("all"), "pump: all", false) : undefined;
    let next = 0;
    for (let n = 0; ; n++) {
      if (next >= replies.length && all === undefined) return;
      if (n >= MAX_PUMP) fail(`pump: more than ${MAX_PUMP} uploads, a runaway`);
      const got = this.harness("next_upload", () => this.core.next_upload(this.now));
      if (got.kind !== "upload") return;
      const u = got.upload;
      this.record(u);
      const reply = next < replies.length ? replies[next++] : all;
      if (reply.hold !== undefined) {
        if (this.held.has(reply.hold)) fail(`pump: held upload "${reply.hold}" named twice`);
        this.held.set(reply.hold, u.id);
      } else {
        this.finish(u.id, reply);
      }
    }
  }

  hide(o) {
    const mode = o.str("beacon") ?? "accept";
    if (!["accept", "refuse", "off"].includes(mode)) fail(`hide: unknown beacon mode "${mode}"`);
    const max = o.count("maxBodyBytes") ?? DEFAULT_MAX_BODY;
    if (max > 0xffffffff) fail(`hide: maxBodyBytes too large`);
    if (mode !== "off") {
      for (;;) {
        const b = this.harness("next_beacon", () => this.core.next_beacon(this.now, max));
        if (b === null || b === undefined) break;
        this.record(b);
        if (mode === "accept") {
          this.finish(b.id, { outcome: "handoff", status: undefined, retryAfter: undefined, jitter: 0 });
        } else {
          this.finish(b.id, { outcome: "notSent", status: undefined, retryAfter: undefined, jitter: 0 });
          break;
        }
      }
    }
    this.settle(true);
  }

  restart() {
    this.held.clear();
    this.rulesFollowUp = null;
    this.core.free();
    this.core = null;
    this.core = this.newCore();
    const { device, identity, queue, profile, rules } = this.store;
    if (device !== null) {
      const random = this.draw();
      this.harness("restart: the stored device record", () =>
        this.core.restore_device(device, this.now, random, false),
      );
    }
    if (identity !== null) {
      this.harness("restart: the stored identity record", () => this.core.restore_identity(identity));
    }
    if (queue !== null) {
      this.harness("restart: the stored queue", () => this.core.restore(queue, this.now));
    }
    if (profile !== null) {
      this.harness("restart: the stored profile", () => this.core.restore_profile(profile));
    }
    if (rules !== null) {
      this.harness("restart: the stored rules", () => this.core.restore_rules(rules, this.now));
    }
  }

  // ---- expectations -------------------------------------------------------

  /** Checks one matcher against a value (undefined when absent). */
  match(what, actual, want) {
    const present = actual !== undefined && actual !== null;
    const miss = (why) => fail(`${what}: ${why}; actual ${show(actual)}`);
    if (isObject(want) && Object.keys(want).some((k) => k.startsWith("$"))) {
      const keys = Object.keys(want);
      if (keys.length !== 1) fail(`${what}: a matcher has exactly one key, got ${show(want)}`);
      const [k] = keys;
      const arg = want[k];
      const str = () => (typeof arg === "string" ? arg : fail(`${what}: ${k} takes a string, got ${show(arg)}`));
      switch (k) {
        case "$present":
          if (arg !== true) fail(`${what}: $present takes true`);
          if (!present) miss("expected present");
          return;
        case "$absent":
          if (arg !== true) fail(`${what}: $absent takes true`);
          if (present) miss("expected absent or null");
          return;
        case "$as": {
          const name = str();
          if (typeof actual !== "string") miss(`expected a string to bind to "${name}"`);
          this.bind(name, actual);
          return;
        }
        case "$eq": {
          const s = this.symbol(str(), what);
          if (actual !== s) miss(`expected ${s} ("${arg}")`);
          return;
        }
        case "$ne": {
          const s = this.symbol(str(), what);
          if (!present || actual === s) miss(`expected a present value other than ${s} ("${arg}")`);
          return;
        }
        case "$at":
          if (!Number.isSafeInteger(arg)) fail(`${what}: $at takes a whole number, got ${show(arg)}`);
          if (actual !== this.start + arg) miss(`expected start + ${arg} = ${this.start + arg}`);
          return;
        case "$sha256": {
          const h = sha256Hex(Buffer.from(str(), "utf8"));
          if (actual !== h) miss(`expected sha256(${show(arg)}) = ${h}`);
          return;
        }
        default:
          fail(`${what}: unknown matcher ${k}`);
      }
    }
    if (want === null ? present : !jsonEqual(actual, want)) miss(`expected ${show(want)}`);
  }

  matchFields(what, doc, fields) {
    if (!isObject(fields)) fail(`${what}: expected an object of dotted paths, got ${show(fields)}`);
    for (const [path, want] of Object.entries(fields)) {
      this.match(`${what} ${path}`, atPath(doc, path), want);
    }
  }

  /** Matches messageIds against symbols ("_" for any). */
  matchIds(what, want, actual) {
    if (!Array.isArray(want)) fail(`${what}: must be a list, got ${show(want)}`);
    if (want.length !== actual.length) {
      fail(`${what}: ${want.length} id(s) expected, ${actual.length} found`);
    }
    want.forEach((w, j) => {
      if (w === "_") return;
      const s = this.symbol(w, `${what} ${j}`);
      if (actual[j] !== s) fail(`${what} ${j}: expected "${w}" (${s}), got ${show(actual[j])}`);
    });
  }

  doc(what, f) {
    const text = this.harness(what, f);
    try {
      return JSON.parse(text);
    } catch (e) {
      fail(`${what}: not JSON: ${e.message}`);
    }
  }

  expect(o) {
    const { uploads, notices, storeOps, wiped } = this;
    this.clearLogs();
    const relative = (t) => t - this.start;

    const wantUploads = o.list("uploads");
    if (wantUploads !== undefined) {
      const summary = uploads.map((u) => u.events.map(label));
      if (wantUploads.length !== uploads.length) {
        fail(`expected ${wantUploads.length} upload(s), got ${uploads.length}: ${show(summary)}`);
      }
      wantUploads.forEach((w, i) => this.expectUpload(`upload ${i}`, w, uploads[i], summary[i]));
    }
    const wantNotices = o.list("notices");
    if (wantNotices !== undefined && !jsonEqual(wantNotices, notices)) {
      fail(`expected notices ${show(wantNotices)}, got ${show(notices)}`);
    }
    const wantWiped = o.bool("wiped");
    if (wantWiped !== undefined && wantWiped !== wiped) fail(`expected wiped ${wantWiped}, got ${wiped}`);
    const wantOps = o.list("storeOps");
    if (wantOps !== undefined && !jsonEqual(wantOps, storeOps)) {
      fail(`expected storeOps ${show(wantOps)}, got ${show(storeOps)}`);
    }
    if (o.has("stats")) this.matchFields("stats", this.doc("stats", () => this.core.stats()), o.take("stats"));
    if (o.has("consent")) {
      this.matchFields("consent", this.doc("consent", () => this.core.consent_view()), o.take("consent"));
    }
    if (o.has("identity")) {
      this.matchFields("identity", this.doc("identity", () => this.core.identity_view()), o.take("identity"));
    }
    if (o.has("pollTimeout")) {
      const want = o.take("pollTimeout");
      const got = this.harness("poll_timeout", () => this.core.poll_timeout(this.now));
      const gotRel = got === undefined || got === null ? null : relative(got);
      let ok;
      if (want === null) ok = gotRel === null;
      else if (want === "now") ok = gotRel !== null && got <= this.now;
      else if (Number.isSafeInteger(want)) ok = gotRel === want;
      else fail(`pollTimeout: expected null, "now" or a relative time, got ${show(want)}`);
      if (!ok) fail(`expected pollTimeout ${show(want)}, got ${show(gotRel)} (relative to start)`);
    }
    if (o.has("nextUpload")) {
      const want = o.take("nextUpload");
      if (want !== "idle") {
        const w = new Keys(want, "nextUpload");
        const t = w.req("waitUntil");
        w.done();
        if (!Number.isSafeInteger(t)) fail(`nextUpload: "waitUntil" must be a whole number, got ${show(t)}`);
      }
      const got = this.harness("next_upload", () => this.core.next_upload(this.now));
      let gotV;
      if (got.kind === "idle") gotV = "idle";
      else if (got.kind === "waitUntil") gotV = { waitUntil: relative(got.at) };
      else if (got.kind === "upload") {
        fail(`expected nextUpload ${show(want)}, but an upload of ${got.upload.events} event(s) was due`);
      } else fail(`next_upload: unknown answer ${show(got)}`);
      if (!jsonEqual(want, gotV)) fail(`expected nextUpload ${show(want)}, got ${show(gotV)}`);
    }
    if (o.has("stored")) this.expectStored(new Keys(o.take("stored"), "stored"));
  }

  expectUpload(what, want, u, summary) {
    const w = new Keys(want, what);
    const n = u.events.length;
    const transport = w.str("transport");
    if (transport !== undefined) {
      if (transport !== "fetch" && transport !== "beacon") fail(`${what}: unknown transport "${transport}"`);
      if (transport !== u.transport) fail(`${what}: expected transport ${transport}, got ${u.transport}`);
    }
    const count = w.count("count");
    if (count !== undefined && count !== n) fail(`${what}: expected ${count} event(s), got ${n}: ${show(summary)}`);
    const ids = w.list("ids");
    if (ids !== undefined) {
      if (ids.length !== n) fail(`${what}: ${ids.length} id(s) expected, ${n} event(s) sent: ${show(summary)}`);
      this.matchIds(`${what} messageId`, ids, u.events.map((e) => e?.messageId));
    }
    const names = w.list("names");
    if (names !== undefined && !jsonEqual(names, summary)) {
      fail(`${what}: expected names ${show(names)}, got ${show(summary)}`);
    }
    const events = w.list("events");
    if (events !== undefined) {
      if (events.length !== n) fail(`${what}: "events" lists ${events.length} event(s), ${n} sent`);
      events.forEach((fields, j) => this.matchFields(`${what} event ${j}`, u.events[j], fields));
    }
    if (w.has("every")) {
      const fields = w.take("every");
      u.events.forEach((e, j) => this.matchFields(`${what} event ${j}`, e, fields));
    }
    w.done();
  }

  expectStored(w) {
    for (const slot of ["device", "identity", "queue", "profile", "rules"]) {
      const want = w.bool(slot);
      const has = this.store[slot] !== null;
      if (want !== undefined && want !== has) fail(`stored.${slot}: expected ${want}, got ${has}`);
    }
    const ids = w.list("queueIds");
    if (ids !== undefined) {
      let got = [];
      if (this.store.queue !== null) {
        let snap;
        try {
          snap = JSON.parse(Buffer.from(this.store.queue).toString("utf8"));
        } catch (e) {
          fail(`stored.queueIds: the stored queue is not JSON: ${e.message}`);
        }
        if (snap?.v !== 1 || !Array.isArray(snap?.events)) {
          fail(`stored.queueIds: the stored queue is not a v1 snapshot`);
        }
        got = snap.events.map((e) => e?.id);
      }
      this.matchIds("stored.queueIds", ids, got);
    }
    w.done();
  }

  run(text) {
    try {
      this.begin(text);
      this.steps.forEach((step, i) => {
        this.stepIndex = i;
        try {
          this.step(step);
        } catch (e) {
          if (e instanceof Failure) throw new Failure(`step ${i} ${JSON.stringify(step)}:\n    ${e.message}`);
          throw e;
        }
      });
      return { ok: true, steps: this.steps.length };
    } catch (e) {
      if (!(e instanceof Failure)) throw e;
      this.log("fail");
      return { ok: false, message: e.message };
    } finally {
      this.core?.free();
      this.core = null;
    }
  }
}

// ---- all scenarios ---------------------------------------------------------

function main() {
  const require = createRequire(import.meta.url);
  let harness;
  try {
    harness = require(join(harnessDir, "sdk_wasm.js"));
  } catch (e) {
    console.error(`cannot load the wasm harness from ${harnessDir} (run scripts/scenarios-wasm.sh): ${e.message}`);
    process.exit(2);
  }
  if (typeof harness.ScenarioCore !== "function") {
    console.error(`${harnessDir}: no ScenarioCore export (build sdk-wasm with --features scenario)`);
    process.exit(2);
  }
  // The README's published vector: a runner that derives draws differently
  // would pass nothing comparable.
  const d0 = sha256("s:0").subarray(0, 16).toString("hex");
  if (d0 !== "21d0725006cf0ba54c6f2c5e2f279fc7") {
    console.error(`draw("s", 0) is ${d0}, not the README's 21d0725006cf0ba54c6f2c5e2f279fc7`);
    process.exit(1);
  }
  const files = readdirSync(scenarioDir)
    .filter((f) => f.endsWith(".json"))
    .sort();
  // Only the transcripts of a previous run go: a stale file must not be
  // compared, and nothing else in the directory is ours.
  mkdirSync(transcriptDir, { recursive: true });
  for (const old of readdirSync(transcriptDir).filter((f) => f.endsWith(".txt"))) {
    rmSync(join(transcriptDir, old));
  }
  let ran = 0;
  let failed = 0;
  const t0 = performance.now();
  for (const f of files) {
    const name = basename(f, ".json");
    const run = new Run(harness, f);
    let result;
    try {
      result = run.run(readFileSync(join(scenarioDir, f), "utf8"));
    } catch (e) {
      // A bug in this runner or a trap in the wasm: still a failure of the file.
      result = { ok: false, message: `crashed: ${e?.stack ?? e}` };
    }
    ran += 1;
    writeFileSync(join(transcriptDir, `${name}.txt`), run.transcript.map((l) => `${l}\n`).join(""));
    if (result.ok) {
      console.log(`ok   ${name} (${result.steps} steps)`);
    } else {
      failed += 1;
      console.log(`FAIL ${f}: ${result.message}`);
    }
  }
  const ms = Math.round(performance.now() - t0);
  console.log(`wasm scenarios: ${ran - failed} passed, ${failed} failed, ${files.length} file(s), ${ms} ms`);
  if (files.length === 0) console.log("no scenario files found");
  if (ran !== files.length) console.log(`ran ${ran} scenario(s) of ${files.length} file(s)`);
  process.exit(failed === 0 && files.length > 0 && ran === files.length ? 0 : 1);
}

main();
