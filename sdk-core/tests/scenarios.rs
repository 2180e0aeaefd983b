//! The native runner of the cross-platform scenario files in
//! `tests/scenarios/*.json` (the format is specified in
//! `tests/scenarios/README.md`; the wasm and Kotlin runners follow the same
//! contract). Every file is parsed strictly: an unknown step, an unknown key
//! or a malformed value fails the run, so a typo cannot skip a check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sdk_core::{
    Client, Config, ConsentError, DecideRequest, EventError, Millis, NextUpload, Notice, Outcome, Persist,
    ProfileResponse, RulesFetch, RulesResponse, Store, Transport,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

type R<T> = Result<T, String>;

/// A JSON object whose keys are consumed one by one; whatever is left at
/// the end is an unknown key and an error.
struct Obj {
    map: Map<String, Value>,
    what: String,
}

impl Obj {
    fn new(v: Value, what: &str) -> R<Obj> {
        match v {
            Value::Object(map) => Ok(Obj { map, what: what.to_owned() }),
            other => Err(format!("{what}: expected an object, got {other}")),
        }
    }
    fn take(&mut self, k: &str) -> Option<Value> {
        self.map.remove(k)
    }
    fn opt_str(&mut self, k: &str) -> R<Option<String>> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("{}: \"{k}\" must be a string, got {other}", self.what)),
        }
    }
    fn req_str(&mut self, k: &str) -> R<String> {
        self.opt_str(k)?.ok_or_else(|| format!("{}: \"{k}\" is required", self.what))
    }
    fn opt_u64(&mut self, k: &str) -> R<Option<u64>> {
        match self.take(k) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("{}: \"{k}\" must be a number", self.what)),
        }
    }
    fn opt_bool(&mut self, k: &str) -> R<Option<bool>> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(format!("{}: \"{k}\" must be true or false, got {other}", self.what)),
        }
    }
    fn done(self) -> R<()> {
        if self.map.is_empty() {
            Ok(())
        } else {
            let keys: Vec<_> = self.map.keys().cloned().collect();
            Err(format!("{}: unknown key(s) {keys:?}", self.what))
        }
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Draw `n` of a scenario: the first 16 bytes of SHA-256("<seed>:<n>").
fn draw(seed: &str, n: u64) -> [u8; 16] {
    let d = Sha256::digest(format!("{seed}:{n}").as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The kinds of the README's table are the core's own names
/// (`EventError::kind`, `ConsentError::kind`), which every binding reports.
fn event_error_kind(e: &EventError) -> String {
    e.kind().into()
}

fn consent_error_kind(e: &ConsentError) -> String {
    e.kind().into()
}

#[derive(Default)]
struct Stored {
    device: Option<Vec<u8>>,
    identity: Option<Vec<u8>>,
    queue: Option<Vec<u8>>,
    profile: Option<Vec<u8>>,
    rules: Option<Vec<u8>>,
}

struct UploadRec {
    transport: &'static str,
    events: Vec<Value>,
}

struct Run {
    config: String,
    seed: String,
    draws: u64,
    start: Millis,
    now: Millis,
    client: Client,
    store: Stored,
    uploads: Vec<UploadRec>,
    notices: Vec<String>,
    wiped: bool,
    store_ops: Vec<String>,
    held: BTreeMap<String, u64>,
    symbols: BTreeMap<String, String>,
    /// Decisions bound by `decide`'s `as`, by symbol (`hero.0`), as the
    /// JSON `decide` returned, for `displayed` / `clicked`.
    decisions: BTreeMap<String, String>,
    /// A follow-up rules request `rules_fetched` returned (the `.sig`),
    /// which the next `rulesFetch` step performs.
    rules_follow_up: Option<RulesFetch>,
    /// The transcript every runner writes (README, "Transcripts"), and the
    /// index of the step running (-1 before the first).
    transcript: Vec<String>,
    step: i64,
}

enum Reply {
    Outcome(Outcome, u32),
    Hold(String),
}

fn parse_reply(v: Value) -> R<Reply> {
    match v {
        Value::Number(n) => {
            let code = n.as_u64().and_then(|c| u16::try_from(c).ok()).ok_or("bad status")?;
            Ok(Reply::Outcome(Outcome::Status { code, retry_after: None }, 0))
        }
        Value::String(s) if s == "network" => Ok(Reply::Outcome(Outcome::NetworkError, 0)),
        v @ Value::Object(_) => {
            let mut o = Obj::new(v, "reply")?;
            if let Some(h) = o.opt_str("hold")? {
                o.done()?;
                return Ok(Reply::Hold(h));
            }
            let jitter = o.opt_u64("jitter")?.unwrap_or(0);
            let jitter = u32::try_from(jitter).map_err(|_| "jitter must fit in 32 bits")?;
            let network = o.opt_bool("network")?.unwrap_or(false);
            let status = o.opt_u64("status")?;
            let retry_after = o.opt_str("retryAfter")?;
            o.done()?;
            let outcome = match (network, status) {
                (true, None) if retry_after.is_none() => Outcome::NetworkError,
                (false, Some(code)) => {
                    Outcome::Status { code: u16::try_from(code).map_err(|_| "bad status")?, retry_after }
                }
                _ => return Err("a reply is a status or a network error".into()),
            };
            Ok(Reply::Outcome(outcome, jitter))
        }
        other => Err(format!("unknown reply {other}")),
    }
}

/// Follows a dotted path (`context.consent.analytics`, `batch.0.event`).
fn at_path<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

impl Run {
    fn rand(&mut self) -> [u8; 16] {
        let r = draw(&self.seed, self.draws);
        self.draws += 1;
        r
    }

    fn new_client(config: &str, now: Millis, random: [u8; 16]) -> R<Client> {
        let cfg = Config::from_json(config).map_err(|e| format!("config refused: {e}"))?;
        Client::new(cfg, now, random).map_err(|e| format!("config refused: {e}"))
    }

    /// What a careful binding does after every call: storage work that is
    /// due, and the notices.
    fn settle(&mut self, force: bool) {
        let p = self.client.take_persist(self.now, force);
        self.apply(p);
        for n in self.client.take_notices() {
            let name = match n {
                Notice::SessionStarted { .. } => "sessionStarted",
                Notice::ConsentChanged { .. } => "consentChanged",
                Notice::RulesLoaded { .. } => "rulesLoaded",
                Notice::RulesRejected { .. } => "rulesRejected",
                Notice::ProfileSynced { .. } => "profileSynced",
                Notice::ProfileSyncRefused { .. } => "profileSyncRefused",
            };
            self.transcript.push(format!("{} notice {name}", self.step));
            self.notices.push(name.into());
        }
    }

    fn apply(&mut self, p: Persist) {
        if p.wipe {
            self.wiped = true;
            self.store = Stored::default();
        }
        if p.wipe {
            self.store_op("wipe".into());
        }
        let mut ops = vec![];
        // README "Simulated store": the decision slots log a removal only
        // when they held something (the core removes them with every wipe
        // and reset, used or not).
        for (name, slot, op, quiet) in [
            ("queue", &mut self.store.queue, p.queue, false),
            ("identity", &mut self.store.identity, p.identity, false),
            ("profile", &mut self.store.profile, p.profile, true),
            ("rules", &mut self.store.rules, p.rules, true),
            ("device", &mut self.store.device, p.device, false),
        ] {
            match op {
                Some(Store::Write(b)) => {
                    *slot = Some(b);
                    ops.push(format!("write:{name}"));
                }
                Some(Store::Remove) => {
                    let held = slot.take().is_some();
                    if held || !quiet {
                        ops.push(format!("remove:{name}"));
                    }
                }
                None => {}
            }
        }
        for op in ops {
            self.store_op(op);
        }
    }

    fn store_op(&mut self, op: String) {
        self.transcript.push(format!("{} store {op}", self.step));
        self.store_ops.push(op);
    }

    fn bind(&mut self, name: Option<String>, value: String) -> R<()> {
        if let Some(n) = name {
            if self.symbols.insert(n.clone(), value).is_some() {
                return Err(format!("symbol \"{n}\" is bound twice"));
            }
        }
        Ok(())
    }

    fn record(&mut self, transport: Transport, body: &[u8]) -> R<()> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("upload body is not JSON: {e}"))?;
        let events = v["batch"].as_array().ok_or("upload body has no batch")?.clone();
        let transport = match transport {
            Transport::Fetch => "fetch",
            Transport::Beacon => "beacon",
        };
        self.transcript.push(format!(
            "{} upload {transport} {} {}",
            self.step,
            events.len(),
            hex_sha256(body)
        ));
        self.uploads.push(UploadRec { transport, events });
        Ok(())
    }

    /// A call's result: a messageId to bind under `as`, or an error kind.
    fn outcome_of(&mut self, r: Result<Option<String>, String>, name: Option<String>) -> R<Option<String>> {
        match r {
            Ok(id) => {
                if let Some(id) = id {
                    self.bind(name, id)?;
                }
                Ok(None)
            }
            Err(kind) => Ok(Some(kind)),
        }
    }

    fn answer(&mut self, id: u64, outcome: Outcome, jitter: u32) -> R<()> {
        self.client
            .upload_finished(id, outcome, self.now, jitter)
            .map_err(|e| format!("upload_finished: {e}"))
    }

    fn step(&mut self, v: Value) -> R<()> {
        let mut o = Obj::new(v, "step")?;
        let op = o.req_str("op")?;
        o.what = format!("step \"{op}\"");
        let expect_error = o.opt_str("error")?;
        let mut outcome: R<()> = Ok(());
        let mut got_error: Option<String> = None;
        match op.as_str() {
            "track" | "page" | "screen" | "identify" | "alias" => {
                let name = o.opt_str("as")?;
                let random = self.rand();
                let now = self.now;
                let r = match op.as_str() {
                    "track" => {
                        let event = o.req_str("event")?;
                        let props = o.opt_str("properties")?;
                        self.client.track(&event, props.as_deref(), now, random)
                    }
                    "page" => {
                        let n = o.opt_str("name")?;
                        let props = o.opt_str("properties")?;
                        self.client.page(n.as_deref(), props.as_deref(), now, random)
                    }
                    "screen" => {
                        let n = o.req_str("name")?;
                        let props = o.opt_str("properties")?;
                        self.client.screen(&n, props.as_deref(), now, random)
                    }
                    "identify" => {
                        let user = o.opt_str("userId")?;
                        let traits = o.opt_str("traits")?;
                        let ids = o.opt_str("ids")?;
                        let token = o.opt_str("userToken")?;
                        self.client.identify(
                            user.as_deref(),
                            traits.as_deref(),
                            ids.as_deref(),
                            token.as_deref(),
                            now,
                            random,
                        )
                    }
                    _ => {
                        let user = o.req_str("userId")?;
                        let prev = o.opt_str("previousId")?;
                        self.client.alias(&user, prev.as_deref(), now, random)
                    }
                };
                got_error = self.outcome_of(r.map(Some).map_err(|e| event_error_kind(&e)), name)?;
            }
            "reset" => {
                let random = self.rand();
                self.client.reset(self.now, random);
            }
            "setConsent" | "setConsentTcf" => {
                let random = self.rand();
                let r = if op == "setConsent" {
                    let json = o.req_str("consent")?;
                    self.client.set_consent(&json, self.now, random)
                } else {
                    let tc = o.req_str("tcString")?;
                    self.client.set_consent_tcf(&tc, self.now, random)
                };
                got_error = self.outcome_of(r.map(|_| None).map_err(|e| consent_error_kind(&e)), None)?;
            }
            "setGpc" => {
                let on = o.opt_bool("on")?.ok_or("setGpc: \"on\" is required")?;
                let random = self.rand();
                self.client.set_gpc(on, self.now, random);
            }
            "loadRules" => {
                let artifact = match o.take("artifact") {
                    Some(Value::String(s)) => s,
                    Some(v @ Value::Object(_)) => v.to_string(),
                    _ => return Err("loadRules: \"artifact\" must be an object or a string".into()),
                };
                let signature = o.opt_str("signature")?;
                let replace = o.opt_bool("replace")?.unwrap_or(true);
                let in_use = o.opt_bool("inUse")?;
                match self.client.load_rules(&artifact, signature.as_deref(), replace, self.now) {
                    Ok(used) => {
                        if let Some(want) = in_use {
                            if want != used {
                                return Err(format!("loadRules: expected inUse {want}, got {used}"));
                            }
                        }
                    }
                    Err(e) => got_error = Some(e.kind().to_owned()),
                }
            }
            "decide" => {
                let placement = o.req_str("placement")?;
                let max = o.opt_u64("max")?.unwrap_or(1) as usize;
                let context = o.opt_str("context")?;
                let utc = match o.take("utcOffsetMinutes") {
                    None => 0,
                    Some(v) => v
                        .as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or("decide: \"utcOffsetMinutes\" must be a whole number")?,
                };
                let name = o.opt_str("as")?;
                let want = o.take("expect");
                let random = self.rand();
                let req = DecideRequest { max, context: context.as_deref(), utc_offset_minutes: utc };
                match self.client.decide(&placement, &req, self.now, random) {
                    Ok(ds) => {
                        let docs: Vec<Value> = ds.iter().map(|d| serde_json::to_value(d).unwrap()).collect();
                        for d in &docs {
                            self.transcript.push(format!("{} {}", self.step, decision_line(d)));
                        }
                        if let Some(n) = &name {
                            for (i, d) in ds.iter().enumerate() {
                                let sym = format!("{n}.{i}");
                                self.bind(Some(sym.clone()), d.decision_id.clone())?;
                                self.decisions.insert(sym, serde_json::to_string(d).unwrap());
                            }
                        }
                        let Some(Value::Array(want)) = want else {
                            return Err("decide: \"expect\" must be a list".into());
                        };
                        if want.len() != docs.len() {
                            let got: Vec<_> = docs.iter().map(|d| d["offerId"].clone()).collect();
                            return Err(format!("decide: expected {} decision(s), got {got:?}", want.len()));
                        }
                        for (i, (w, d)) in want.into_iter().zip(&docs).enumerate() {
                            let what = format!("decision {i}");
                            let mut w = Obj::new(w, &what)?;
                            let mut fields = Map::new();
                            fields.insert("offerId".into(), Value::String(w.req_str("offerId")?));
                            let is_default = w
                                .opt_bool("isDefault")?
                                .ok_or(format!("{what}: \"isDefault\" is required"))?;
                            fields.insert("isDefault".into(), Value::Bool(is_default));
                            for k in ["experimentId", "variantId"] {
                                fields.insert(k.into(), w.take(k).unwrap_or(Value::Null));
                            }
                            if let Some(m) = w.take("decisionId") {
                                fields.insert("decisionId".into(), m);
                            }
                            w.done()?;
                            self.match_fields(&what, d, Value::Object(fields))?;
                        }
                    }
                    Err(e) => {
                        if want.is_some() {
                            return Err(format!("decide: refused ({}) but \"expect\" given", e.kind()));
                        }
                        got_error = Some(e.kind().to_owned());
                    }
                }
            }
            "displayed" | "clicked" => {
                let sym = o.req_str("decision")?;
                let want = o.req_str("expect")?;
                let name = o.opt_str("as")?;
                if !matches!(want.as_str(), "recorded" | "duplicate") {
                    return Err(format!("{op}: \"expect\" is \"recorded\" or \"duplicate\""));
                }
                let d = self
                    .decisions
                    .get(&sym)
                    .cloned()
                    .ok_or_else(|| format!("{op}: unknown decision \"{sym}\""))?;
                let random = self.rand();
                let r = if op == "displayed" {
                    self.client.displayed(&d, self.now, random)
                } else {
                    self.client.clicked(&d, self.now, random)
                };
                match r {
                    Ok(id) => {
                        let got = if id.is_some() { "recorded" } else { "duplicate" };
                        self.transcript.push(format!(
                            "{} {op} {}",
                            self.step,
                            id.as_deref().unwrap_or("duplicate")
                        ));
                        if got != want {
                            return Err(format!("{op}: expected {want}, got {got}"));
                        }
                        if let Some(id) = id {
                            self.bind(name, id)?;
                        }
                    }
                    Err(e) => got_error = Some(event_error_kind(&e)),
                }
            }
            "rulesFetch" => {
                let want = o.take("expect").ok_or("rulesFetch: \"expect\" is required")?;
                let reply = o.take("reply");
                let fetch = match self.rules_follow_up.take() {
                    Some(f) => Some(f),
                    None => self.client.next_rules_fetch(self.now),
                };
                let Some(fetch) = fetch else {
                    self.transcript.push(format!("{} rulesFetch none", self.step));
                    if want != Value::Null {
                        return Err(format!("rulesFetch: expected {want}, no request was due"));
                    }
                    if reply.is_some() {
                        return Err("rulesFetch: \"reply\" given but no request was due".into());
                    }
                    return self.finish_step(o, &op, expect_error, None);
                };
                let kind = if fetch.signature { "signature" } else { "artifact" };
                self.transcript.push(format!(
                    "{} rulesFetch {} {} {kind}",
                    self.step,
                    fetch.url,
                    fetch.etag.as_deref().unwrap_or("-")
                ));
                if want == Value::Null {
                    return Err(format!("rulesFetch: expected none, got a request for {}", fetch.url));
                }
                let mut w = Obj::new(want, "rulesFetch expect")?;
                let doc =
                    serde_json::json!({"url": fetch.url, "etag": fetch.etag, "signature": fetch.signature});
                let mut fields = Map::new();
                if let Some(u) = w.take("url") {
                    fields.insert("url".into(), u);
                }
                fields.insert("etag".into(), w.take("etag").unwrap_or(Value::Null));
                fields.insert("signature".into(), Value::Bool(w.opt_bool("signature")?.unwrap_or(false)));
                w.done()?;
                self.match_fields("rulesFetch", &doc, Value::Object(fields))?;
                let mut r = Obj::new(reply.ok_or("rulesFetch: \"reply\" is required")?, "rulesFetch reply")?;
                let etag = r.opt_str("etag")?;
                let (status, body, jitter) = fetch_reply(r, "rulesFetch", "artifact")?;
                // The mobile API's mapping (`Client::rules_fetched`), which the README adopts.
                let response = match (status, body.as_deref()) {
                    (Some(304), _) => RulesResponse::NotModified,
                    (Some(200), Some(b)) => {
                        RulesResponse::Body { bytes: b.as_bytes(), etag: etag.as_deref() }
                    }
                    (status, _) => RulesResponse::Failed { status },
                };
                match self.client.rules_fetched(fetch.id, response, self.now, jitter) {
                    Ok(next) => self.rules_follow_up = next,
                    Err(e) => got_error = Some(e.kind().to_owned()),
                }
            }
            "profileFetch" => {
                let want = o.take("expect").ok_or("profileFetch: \"expect\" is required")?;
                let reply = o.take("reply");
                let Some(fetch) = self.client.next_profile_fetch(self.now) else {
                    self.transcript.push(format!("{} profileFetch none", self.step));
                    if want != Value::Null {
                        return Err(format!("profileFetch: expected {want}, no request was due"));
                    }
                    if reply.is_some() {
                        return Err("profileFetch: \"reply\" given but no request was due".into());
                    }
                    return self.finish_step(o, &op, expect_error, None);
                };
                self.transcript.push(format!("{} profileFetch {} {}", self.step, fetch.url, fetch.token));
                if want == Value::Null {
                    return Err(format!("profileFetch: expected none, got a request for {}", fetch.url));
                }
                let mut w = Obj::new(want, "profileFetch expect")?;
                let device = self.client.identity_view().device_id.unwrap_or_default().to_owned();
                let mut fields = Map::new();
                if let Some(u) = w.take("url") {
                    let u = u.as_str().ok_or("profileFetch: \"url\" must be a string")?;
                    fields.insert("url".into(), Value::String(u.replace("{deviceId}", &device)));
                }
                if let Some(t) = w.take("token") {
                    fields.insert("token".into(), t);
                }
                w.done()?;
                let doc = serde_json::json!({"url": fetch.url, "token": fetch.token});
                self.match_fields("profileFetch", &doc, Value::Object(fields))?;
                let r = Obj::new(reply.ok_or("profileFetch: \"reply\" is required")?, "profileFetch reply")?;
                let (status, body, jitter) = fetch_reply(r, "profileFetch", "profile")?;
                let response = match (status, body.as_deref()) {
                    (Some(200), Some(b)) => ProfileResponse::Body { bytes: b.as_bytes() },
                    (status, _) => ProfileResponse::Failed { status },
                };
                if let Err(e) = self.client.profile_fetched(fetch.id, response, self.now, jitter) {
                    got_error = Some(e.kind().to_owned());
                }
            }
            "refreshProfile" => self.client.refresh_profile(),
            "flush" => self.client.flush(),
            "networkAvailable" => self.client.network_available(),
            "advance" => {
                let ms = o.opt_u64("ms")?.ok_or("advance: \"ms\" is required")?;
                self.now += ms;
            }
            "pump" => {
                let mut replies: Vec<Reply> = match o.take("replies") {
                    None => vec![],
                    Some(Value::Array(a)) => a.into_iter().map(parse_reply).collect::<R<_>>()?,
                    Some(other) => return Err(format!("pump: \"replies\" must be a list, got {other}")),
                };
                replies.reverse();
                let all = o.take("all").map(parse_reply).transpose()?;
                if matches!(all, Some(Reply::Hold(_))) {
                    return Err("pump: \"all\" cannot hold".into());
                }
                for _ in 0..1_000 {
                    if replies.is_empty() && all.is_none() {
                        break;
                    }
                    let NextUpload::Upload(u) = self.client.next_upload(self.now) else { break };
                    self.record(u.transport, &u.body)?;
                    let reply = match replies.pop() {
                        Some(r) => r,
                        None => match &all {
                            Some(Reply::Outcome(oc, j)) => Reply::Outcome(oc.clone(), *j),
                            _ => unreachable!(),
                        },
                    };
                    match reply {
                        Reply::Outcome(oc, j) => self.answer(u.id, oc, j)?,
                        Reply::Hold(h) => {
                            if self.held.insert(h.clone(), u.id).is_some() {
                                return Err(format!("pump: held upload \"{h}\" named twice"));
                            }
                        }
                    }
                }
            }
            "finish" => {
                let h = o.req_str("upload")?;
                let reply = parse_reply(o.take("reply").ok_or("finish: \"reply\" is required")?)?;
                let id = self.held.remove(&h).ok_or_else(|| format!("finish: no held upload \"{h}\""))?;
                match reply {
                    Reply::Outcome(oc, j) => self.answer(id, oc, j)?,
                    Reply::Hold(_) => return Err("finish: cannot hold again".into()),
                }
            }
            "hide" => {
                let mode = o.opt_str("beacon")?.unwrap_or_else(|| "accept".into());
                let max = o.opt_u64("maxBodyBytes")?.unwrap_or(65_536) as usize;
                if !matches!(mode.as_str(), "accept" | "refuse" | "off") {
                    return Err(format!("hide: unknown beacon mode \"{mode}\""));
                }
                if mode != "off" {
                    while let Some(b) = self.client.next_beacon(self.now, max) {
                        self.record(b.transport, &b.body)?;
                        if mode == "accept" {
                            self.answer(b.id, Outcome::Handoff, 0)?;
                        } else {
                            self.answer(b.id, Outcome::NotSent, 0)?;
                            break;
                        }
                    }
                }
                self.settle(true);
            }
            "restart" => {
                self.held.clear();
                self.rules_follow_up = None;
                let random = self.rand();
                self.client = Run::new_client(&self.config, self.now, random)?;
                if let Some(d) = self.store.device.clone() {
                    let random = self.rand();
                    self.client
                        .restore_device(&d, self.now, random, false)
                        .map_err(|e| format!("restart: stored device record refused: {e}"))?;
                }
                if let Some(i) = self.store.identity.clone() {
                    self.client
                        .restore_identity(&i)
                        .map_err(|e| format!("restart: stored identity record refused: {e}"))?;
                }
                if let Some(q) = self.store.queue.clone() {
                    self.client
                        .restore(&q, self.now)
                        .map_err(|e| format!("restart: stored queue refused: {e}"))?;
                }
                if let Some(p) = self.store.profile.clone() {
                    self.client
                        .restore_profile(&p)
                        .map_err(|e| format!("restart: stored profile refused: {e}"))?;
                }
                if let Some(r) = self.store.rules.clone() {
                    self.client
                        .restore_rules(&r, self.now)
                        .map_err(|e| format!("restart: stored rules refused: {e}"))?;
                }
            }
            "expect" => {
                outcome = self.expect(&mut o);
                if outcome.is_ok() {
                    self.transcript.push(format!("{} expect ok", self.step));
                }
            }
            other => return Err(format!("unknown step op \"{other}\"")),
        }
        outcome?;
        self.finish_step(o, &op, expect_error, got_error)
    }

    /// The end of every step: no key left, the storage and notice work, the
    /// expected error.
    fn finish_step(
        &mut self,
        o: Obj,
        op: &str,
        expect_error: Option<String>,
        got_error: Option<String>,
    ) -> R<()> {
        o.done()?;
        if op != "hide" {
            self.settle(false);
        }
        match (expect_error, got_error) {
            (None, None) => Ok(()),
            (Some(want), Some(got)) if want == got => Ok(()),
            (Some(want), got) => Err(format!("expected error \"{want}\", got {got:?}")),
            (None, Some(got)) => Err(format!("unexpected error \"{got}\"")),
        }
    }

    fn matches(&mut self, what: &str, actual: Option<&Value>, want: &Value) -> R<()> {
        let fail = |why: String| {
            Err(format!("{what}: {why}; actual {}", actual.map_or("absent".into(), |v| v.to_string())))
        };
        let present = actual.is_some_and(|v| !v.is_null());
        if let Value::Object(m) = want {
            if m.len() == 1 && m.keys().all(|k| k.starts_with('$')) {
                let (k, arg) = m.iter().next().unwrap();
                let as_str = || arg.as_str().ok_or_else(|| format!("{what}: {k} takes a string"));
                let sym = |s: &str, syms: &BTreeMap<String, String>| {
                    syms.get(s).cloned().ok_or_else(|| format!("{what}: unknown symbol \"{s}\""))
                };
                let actual_str = actual.and_then(Value::as_str);
                return match k.as_str() {
                    "$present" if present => Ok(()),
                    "$present" => fail("expected present".into()),
                    "$absent" if !present => Ok(()),
                    "$absent" => fail("expected absent or null".into()),
                    "$as" => {
                        let name = as_str()?;
                        let v = actual_str
                            .ok_or_else(|| format!("{what}: expected a string to bind to \"{name}\""))?;
                        self.bind(Some(name.to_owned()), v.to_owned())
                    }
                    "$eq" | "$ne" => {
                        let s = sym(as_str()?, &self.symbols)?;
                        let eq = actual_str == Some(s.as_str());
                        match (k.as_str(), eq, present) {
                            ("$eq", true, _) | ("$ne", false, true) => Ok(()),
                            _ => fail(format!("expected {k} {arg} ({s})")),
                        }
                    }
                    "$at" => {
                        let off = arg.as_u64().ok_or_else(|| format!("{what}: $at takes a number"))?;
                        if actual.and_then(Value::as_u64) == Some(self.start + off) {
                            Ok(())
                        } else {
                            fail(format!("expected start + {off}"))
                        }
                    }
                    "$sha256" => {
                        let h = sha256_hex(as_str()?);
                        if actual_str == Some(h.as_str()) {
                            Ok(())
                        } else {
                            fail(format!("expected sha256({arg}) = {h}"))
                        }
                    }
                    other => Err(format!("{what}: unknown matcher {other}")),
                };
            }
        }
        let ok = match (actual, want) {
            (None, Value::Null) => true,
            (Some(a), w) => a == w,
            (None, _) => false,
        };
        if ok {
            Ok(())
        } else {
            fail(format!("expected {want}"))
        }
    }

    fn match_fields(&mut self, what: &str, doc: &Value, fields: Value) -> R<()> {
        let Value::Object(m) = fields else { return Err(format!("{what}: expected an object of paths")) };
        for (path, want) in m {
            let actual = at_path(doc, &path).cloned();
            self.matches(&format!("{what} {path}"), actual.as_ref(), &want)?;
        }
        Ok(())
    }

    fn expect(&mut self, o: &mut Obj) -> R<()> {
        let uploads = std::mem::take(&mut self.uploads);
        let notices = std::mem::take(&mut self.notices);
        let wiped = std::mem::take(&mut self.wiped);
        let store_ops = std::mem::take(&mut self.store_ops);
        if let Some(want) = o.take("uploads") {
            let Value::Array(want) = want else { return Err("expect: \"uploads\" must be a list".into()) };
            let summary: Vec<Vec<String>> =
                uploads.iter().map(|u| u.events.iter().map(|e| label(e).to_owned()).collect()).collect();
            if want.len() != uploads.len() {
                return Err(format!("expected {} upload(s), got {}: {summary:?}", want.len(), uploads.len()));
            }
            for (i, (w, u)) in want.into_iter().zip(&uploads).enumerate() {
                let what = format!("upload {i}");
                let mut w = Obj::new(w, &what)?;
                if let Some(t) = w.opt_str("transport")? {
                    if t != u.transport {
                        return Err(format!("{what}: expected transport {t}, got {}", u.transport));
                    }
                }
                let n = u.events.len();
                if let Some(c) = w.opt_u64("count")? {
                    if c as usize != n {
                        return Err(format!("{what}: expected {c} event(s), got {n}: {:?}", summary[i]));
                    }
                }
                if let Some(names) = w.take("names") {
                    let got: Vec<Value> = summary[i].iter().map(|s| Value::String(s.clone())).collect();
                    if names != Value::Array(got) {
                        return Err(format!("{what}: expected names {names}, got {:?}", summary[i]));
                    }
                }
                if let Some(ids) = w.take("ids") {
                    let Value::Array(ids) = ids else {
                        return Err(format!("{what}: \"ids\" must be a list"));
                    };
                    if ids.len() != n {
                        return Err(format!(
                            "{what}: {} id(s) expected, {n} event(s) sent: {:?}",
                            ids.len(),
                            summary[i]
                        ));
                    }
                    for (j, (id, e)) in ids.iter().zip(&u.events).enumerate() {
                        let id = id.as_str().ok_or_else(|| format!("{what}: ids are strings"))?;
                        if id == "_" {
                            continue;
                        }
                        let actual = e.get("messageId");
                        self.matches(
                            &format!("{what} event {j} messageId"),
                            actual,
                            &serde_json::json!({"$eq": id}),
                        )?;
                    }
                }
                if let Some(events) = w.take("events") {
                    let Value::Array(events) = events else {
                        return Err(format!("{what}: \"events\" must be a list"));
                    };
                    if events.len() != n {
                        return Err(format!("{what}: \"events\" lists {} event(s), {n} sent", events.len()));
                    }
                    for (j, (fields, e)) in events.into_iter().zip(&u.events).enumerate() {
                        self.match_fields(&format!("{what} event {j}"), e, fields)?;
                    }
                }
                if let Some(fields) = w.take("every") {
                    for (j, e) in u.events.iter().enumerate() {
                        self.match_fields(&format!("{what} event {j}"), e, fields.clone())?;
                    }
                }
                w.done()?;
            }
        }
        if let Some(want) = o.take("notices") {
            let got = Value::Array(notices.iter().map(|s| Value::String(s.clone())).collect());
            if want != got {
                return Err(format!("expected notices {want}, got {got}"));
            }
        }
        if let Some(want) = o.opt_bool("wiped")? {
            if want != wiped {
                return Err(format!("expected wiped {want}, got {wiped}"));
            }
        }
        if let Some(want) = o.take("storeOps") {
            let got = Value::Array(store_ops.iter().map(|s| Value::String(s.clone())).collect());
            if want != got {
                return Err(format!("expected storeOps {want}, got {got}"));
            }
        }
        if let Some(fields) = o.take("stats") {
            let doc = serde_json::to_value(self.client.stats()).unwrap();
            self.match_fields("stats", &doc, fields)?;
        }
        if let Some(fields) = o.take("consent") {
            let doc = serde_json::to_value(self.client.consent_view()).unwrap();
            self.match_fields("consent", &doc, fields)?;
        }
        if let Some(fields) = o.take("identity") {
            let doc = serde_json::to_value(self.client.identity_view()).unwrap();
            self.match_fields("identity", &doc, fields)?;
        }
        if let Some(want) = o.take("pollTimeout") {
            let got = self.client.poll_timeout(self.now);
            let ok = match (&want, got) {
                (Value::Null, None) => true,
                (Value::String(s), Some(t)) if s == "now" => t <= self.now,
                (Value::Number(n), Some(t)) => n.as_u64().map(|n| self.start + n) == Some(t),
                _ => false,
            };
            if !ok {
                let got = got.map(|t| t as i128 - self.start as i128);
                return Err(format!("expected pollTimeout {want}, got {got:?} (relative to start)"));
            }
        }
        if let Some(want) = o.take("nextUpload") {
            let got = match self.client.next_upload(self.now) {
                NextUpload::Idle => Value::String("idle".into()),
                NextUpload::WaitUntil(t) => {
                    serde_json::json!({"waitUntil": t as i128 - self.start as i128})
                }
                NextUpload::Upload(u) => {
                    return Err(format!(
                        "expected nextUpload {want}, but an upload of {} event(s) was due",
                        u.events
                    ))
                }
            };
            if want != got {
                return Err(format!("expected nextUpload {want}, got {got}"));
            }
        }
        if let Some(want) = o.take("stored") {
            let mut w = Obj::new(want, "stored")?;
            for (slot, has) in [
                ("device", self.store.device.is_some()),
                ("identity", self.store.identity.is_some()),
                ("queue", self.store.queue.is_some()),
                ("profile", self.store.profile.is_some()),
                ("rules", self.store.rules.is_some()),
            ] {
                if let Some(b) = w.opt_bool(slot)? {
                    if b != has {
                        return Err(format!("stored.{slot}: expected {b}, got {has}"));
                    }
                }
            }
            if let Some(ids) = w.take("queueIds") {
                let Value::Array(ids) = ids else { return Err("stored: \"queueIds\" must be a list".into()) };
                let q = self.store.queue.clone().unwrap_or_else(|| br#"{"v":1,"events":[]}"#.to_vec());
                let snap: Value = serde_json::from_slice(&q).map_err(|e| format!("stored queue: {e}"))?;
                let got: Vec<Value> = snap["events"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| e["id"].clone())
                    .collect();
                if got.len() != ids.len() {
                    return Err(format!("stored.queueIds: expected {} id(s), got {}", ids.len(), got.len()));
                }
                for (j, (id, g)) in ids.iter().zip(&got).enumerate() {
                    if id.as_str() != Some("_") {
                        self.matches(
                            &format!("stored.queueIds {j}"),
                            Some(g),
                            &serde_json::json!({"$eq": id}),
                        )?;
                    }
                }
            }
            w.done()?;
        }
        Ok(())
    }
}

/// How an expected `names` list refers to an event: its `event` (track),
/// else its `name` (page, screen), else its `type`.
fn label(e: &Value) -> &str {
    e.get("event").or_else(|| e.get("name")).or_else(|| e.get("type")).and_then(Value::as_str).unwrap_or("?")
}

/// README "Transcripts": `decision <offerId> <experimentId> <variantId>
/// <default|offer> <decisionId>`, `-` for an absent id.
fn decision_line(d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or("-").to_owned();
    let kind = if d["isDefault"] == Value::Bool(true) { "default" } else { "offer" };
    format!("decision {} {} {} {kind} {}", s("offerId"), s("experimentId"), s("variantId"), s("decisionId"))
}

/// T0 of the core's unit tests: 2026-11-24T09:30:00Z.
const DEFAULT_START: Millis = 1_795_512_600_000;

fn run_file(path: &Path) -> R<()> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let mut o = Obj::new(v, "scenario")?;
    let name = o.req_str("name")?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if name != stem {
        return Err(format!("scenario: \"name\" is \"{name}\" but the file is {stem}.json"));
    }
    let _description = o.opt_str("description")?;
    let seed = o.req_str("seed")?;
    let start = o.opt_u64("start")?.unwrap_or(DEFAULT_START);
    let config = o.take("config").ok_or("scenario: \"config\" is required")?;
    let config = match config {
        Value::String(s) => s,
        v @ Value::Object(_) => v.to_string(),
        _ => return Err("scenario: \"config\" must be an object or a string".into()),
    };
    let Some(Value::Array(steps)) = o.take("steps") else {
        return Err("scenario: \"steps\" must be a list".into());
    };
    o.done()?;
    let mut run = Run {
        client: Run::new_client(&config, start, draw(&seed, 0))?,
        config,
        seed,
        draws: 1,
        start,
        now: start,
        store: Stored::default(),
        uploads: vec![],
        notices: vec![],
        wiped: false,
        store_ops: vec![],
        held: BTreeMap::new(),
        symbols: BTreeMap::new(),
        decisions: BTreeMap::new(),
        rules_follow_up: None,
        transcript: vec![],
        step: -1,
    };
    run.settle(false);
    for (i, step) in steps.into_iter().enumerate() {
        run.step = i64::try_from(i).map_err(|_| "too many steps")?;
        let shown = step.to_string();
        run.step(step).map_err(|e| format!("step {i} {shown}:\n    {e}"))?;
    }
    write_transcript(&name, &run.transcript)
}

/// `target/scenarios/native/<name>.txt`, compared with the other runners'
/// by `scripts/scenarios-compare.mjs`.
fn write_transcript(name: &str, lines: &[String]) -> R<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("scenarios/native");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join(format!("{name}.txt")), text).map_err(|e| format!("cannot write transcript: {e}"))
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[test]
fn every_scenario_file_runs_and_passes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());
    let mut failures = vec![];
    let mut ran = 0;
    for f in &files {
        match run_file(f) {
            Ok(()) => ran += 1,
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(failures.is_empty(), "{} scenario(s) failed:\n{}", failures.len(), failures.join("\n"));
    assert!(ran >= files.len(), "ran {ran} of {} scenario files", files.len());
}

#[test]
fn draws_are_as_the_readme_defines_them() {
    // The README quotes this vector so other runners can check their derivation.
    assert_eq!(hex(&draw("s", 0)), "21d0725006cf0ba54c6f2c5e2f279fc7");
    assert_eq!(hex(&draw("s", 10)), &sha256_hex("s:10")[..32]);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `rulesFetch` / `profileFetch` reply as the README defines it: a status
/// or a network error, the body under `body_key` (an object serialised
/// compactly or a string used byte for byte), and the jitter.
fn fetch_reply(mut r: Obj, op: &str, body_key: &str) -> R<(Option<u16>, Option<String>, u32)> {
    let network = r.opt_bool("network")?.unwrap_or(false);
    let status = r.opt_u64("status")?;
    let body = match r.take(body_key) {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(v @ Value::Object(_)) => Some(v.to_string()),
        Some(_) => return Err(format!("{op}: \"{body_key}\" must be an object or a string")),
    };
    let jitter = u32::try_from(r.opt_u64("jitter")?.unwrap_or(0)).map_err(|_| "jitter: 32 bits")?;
    r.done()?;
    let status = match (network, status) {
        (true, None) => None,
        (false, Some(s)) => Some(u16::try_from(s).map_err(|_| "bad status")?),
        _ => return Err(format!("{op}: a reply is a status or a network error")),
    };
    Ok((status, body, jitter))
}
