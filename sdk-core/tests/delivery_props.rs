//! Property tests of delivery over long random histories: a simulated clock,
//! a simulated collector answering 2xx/5xx/429/timeouts/4xx, page hides with
//! beacons and process restarts from snapshots. The binding is modelled as a
//! careful one: it persists after every step, as the mobile file store does
//! before acknowledging a call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use sdk_core::{Client, Config, NextUpload, Outcome, Persist, Stats, Store, Upload};

#[derive(Debug, Clone)]
enum Reply {
    Ok,
    ServerError(u16),
    RetryAfter {
        code: u16,
        secs: u16,
    },
    /// The request timed out; `stored` says whether the collector got it.
    Timeout {
        stored: bool,
    },
    Permanent(u16),
    TooLarge,
}

#[derive(Debug, Clone)]
enum Op {
    Track {
        n: u8,
        pad: u16,
    },
    Advance(u32),
    Pump,
    Complete {
        pick: usize,
        reply: Reply,
        jitter: u32,
    },
    Flush,
    Online,
    /// The page is hidden: everything pending goes by beacon; `lost` beacons
    /// never reach the collector (a 5xx nobody sees).
    Hide {
        lost: bool,
    },
    /// The process dies; uploads in flight did or did not reach the server.
    Restart {
        reached: bool,
    },
}

fn reply(lossy: bool) -> impl Strategy<Value = Reply> {
    let base = prop_oneof![
        6 => Just(Reply::Ok),
        3 => prop_oneof![Just(500u16), Just(502), Just(503), Just(504), Just(408), Just(410)].prop_map(Reply::ServerError),
        1 => (prop_oneof![Just(429u16), Just(503)], 0u16..120).prop_map(|(code, secs)| Reply::RetryAfter { code, secs }),
        2 => any::<bool>().prop_map(|stored| Reply::Timeout { stored }),
    ];
    if lossy {
        prop_oneof![
            12 => base,
            1 => prop_oneof![Just(400u16), Just(401), Just(404), Just(501)].prop_map(Reply::Permanent),
            1 => Just(Reply::TooLarge),
        ]
        .boxed()
    } else {
        base.boxed()
    }
}

fn op(lossy: bool) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u8..12, 0u16..600).prop_map(|(n, pad)| Op::Track { n, pad }),
        4 => prop_oneof![0u32..2_000, 0u32..120_000].prop_map(Op::Advance),
        6 => Just(Op::Pump),
        6 => (any::<usize>(), reply(lossy), any::<u32>()).prop_map(|(pick, reply, jitter)| Op::Complete { pick, reply, jitter }),
        1 => Just(Op::Flush),
        1 => Just(Op::Online),
        1 => any::<bool>().prop_map(|lost| Op::Hide { lost }),
        1 => any::<bool>().prop_map(|reached| Op::Restart { reached }),
    ]
}

fn config(lossy: bool, in_flight: usize) -> Config {
    let mut c = Config::new("http://collector.test", "key");
    c.batch.max_events = 7;
    c.batch.max_bytes = 6_000;
    c.batch.max_age_ms = 3_000;
    c.batch.max_in_flight = in_flight;
    c.limits.max_event_bytes = 2_048;
    c.retry.base_backoff_ms = 200;
    c.retry.max_backoff_ms = 20_000;
    c.retry.max_retry_after_ms = 60_000;
    if lossy {
        c.queue.max_events = 40;
        c.queue.max_bytes = 30_000;
        c.retry.max_attempts = 3;
        c.retry.max_event_age_ms = 30 * 60_000;
    } else {
        c.queue.max_events = 100_000;
        c.queue.max_bytes = 64 << 20;
        c.queue.max_persist_bytes = 64 << 20;
        c.retry.max_attempts = u32::MAX;
        c.retry.max_event_age_ms = u64::MAX / 4;
    }
    c
}

struct Sim {
    cfg: Config,
    client: Client,
    now: u64,
    seq: u64,
    stored_queue: Option<Vec<u8>>,
    stored_identity: Option<Vec<u8>>,
    in_flight: Vec<(Upload, Vec<String>)>,
    /// messageId → the exact event JSON the collector received.
    server: HashMap<String, String>,
    /// messageId → uploads containing it that a client saw succeed.
    acked: HashMap<String, u32>,
    accepted: HashSet<String>,
    drops_before: u64,
}

fn events_of(u: &Upload) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&u.body).unwrap();
    v["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["messageId"].as_str().unwrap().to_owned(), e.to_string()))
        .collect()
}

fn drops(s: &Stats) -> u64 {
    s.dropped_queue_full + s.dropped_rejected + s.dropped_max_attempts + s.dropped_expired
}

impl Sim {
    fn new(cfg: Config) -> Sim {
        let client = Client::new(cfg.clone(), 1_800_000_000_000, [0; 16]).unwrap();
        Sim {
            cfg,
            client,
            now: 1_800_000_000_000,
            seq: 1,
            stored_queue: None,
            stored_identity: None,
            in_flight: vec![],
            server: HashMap::new(),
            acked: HashMap::new(),
            accepted: HashSet::new(),
            drops_before: 0,
        }
    }

    fn random(&mut self) -> [u8; 16] {
        self.seq += 1;
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&self.seq.to_le_bytes());
        r
    }

    fn receive(&mut self, u: &Upload) {
        for (id, json) in events_of(u) {
            assert!(self.accepted.contains(&id), "the collector got an id nobody tracked: {id}");
            if let Some(prev) = self.server.get(&id) {
                assert_eq!(prev, &json, "an event changed between two sends");
            }
            self.server.insert(id, json);
        }
    }

    fn persist(&mut self) {
        let Persist { queue, identity, .. } = self.client.take_persist(self.now, true);
        match queue {
            Some(Store::Write(b)) => self.stored_queue = Some(b),
            Some(Store::Remove) => self.stored_queue = None,
            None => {}
        }
        match identity {
            Some(Store::Write(b)) => self.stored_identity = Some(b),
            Some(Store::Remove) => self.stored_identity = None,
            None => {}
        }
    }

    fn check_invariants(&self) {
        let s = self.client.stats();
        assert!(s.queued <= self.cfg.queue.max_events, "queue over its event bound");
        assert!(s.queued_bytes <= self.cfg.queue.max_bytes, "queue over its byte bound");
        assert_eq!(
            s.accepted + s.restored,
            s.delivered + drops(&s) + s.handed_over + s.queued as u64,
            "every event is delivered, dropped and counted, or still queued: {s:?}"
        );
        // No event is in two uploads at once.
        let mut seen = HashSet::new();
        for (_, ids) in &self.in_flight {
            for id in ids {
                assert!(seen.insert(id), "event {id} is in two uploads in flight");
            }
        }
        for (id, n) in &self.acked {
            assert!(*n <= 1, "event {id} was acknowledged in {n} successful batches");
        }
    }

    fn pump(&mut self) {
        while let NextUpload::Upload(u) = self.client.next_upload(self.now) {
            assert!(u.body.len() <= self.cfg.batch.max_bytes, "batch over maxBytes");
            assert!(u.events <= self.cfg.batch.max_events && u.events > 0);
            let ids = events_of(&u).into_iter().map(|(id, _)| id).collect();
            self.in_flight.push((u, ids));
            self.check_invariants();
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Track { n, pad } => {
                for _ in 0..n {
                    let props = format!(r#"{{"pad":"{}"}}"#, "p".repeat(usize::from(pad)));
                    let r = self.random();
                    let id = self.client.track("Tick", Some(&props), self.now, r).unwrap();
                    self.accepted.insert(id);
                }
            }
            Op::Advance(ms) => self.now += u64::from(ms),
            Op::Pump => self.pump(),
            Op::Flush => self.client.flush(),
            Op::Online => self.client.network_available(),
            Op::Complete { pick, reply, jitter } => {
                if self.in_flight.is_empty() {
                    return;
                }
                let (u, ids) = self.in_flight.remove(pick % self.in_flight.len());
                let outcome = match &reply {
                    Reply::Ok => {
                        self.receive(&u);
                        for id in &ids {
                            *self.acked.entry(id.clone()).or_default() += 1;
                        }
                        Outcome::Status { code: 200, retry_after: None }
                    }
                    Reply::ServerError(code) => Outcome::Status { code: *code, retry_after: None },
                    Reply::RetryAfter { code, secs } => {
                        Outcome::Status { code: *code, retry_after: Some(secs.to_string()) }
                    }
                    Reply::Timeout { stored } => {
                        if *stored {
                            self.receive(&u);
                        }
                        Outcome::NetworkError
                    }
                    Reply::Permanent(code) => Outcome::Status { code: *code, retry_after: None },
                    Reply::TooLarge => Outcome::Status { code: 413, retry_after: None },
                };
                self.client.upload_finished(u.id, outcome, self.now, jitter).unwrap();
                // Only retryable replies set a new wait; others leave an
                // earlier one (say a Retry-After) standing, as they should.
                let retried =
                    matches!(reply, Reply::ServerError(_) | Reply::RetryAfter { .. } | Reply::Timeout { .. });
                if let (true, Some(until)) = (retried, self.client.stats().backoff_until) {
                    let wait = until.saturating_sub(self.now);
                    let ra_cap = match reply {
                        Reply::RetryAfter { secs, .. } => {
                            (u64::from(secs) * 1000).min(self.cfg.retry.max_retry_after_ms)
                        }
                        _ => 0,
                    };
                    assert!(
                        wait <= self.cfg.retry.max_backoff_ms.max(ra_cap),
                        "backoff {wait} ms over its cap"
                    );
                }
            }
            Op::Hide { lost } => {
                while let Some(b) = self.client.next_beacon(self.now, 65_536) {
                    assert!(b.body.len() <= 65_536);
                    if !lost {
                        self.receive(&b);
                    }
                    self.client.upload_finished(b.id, Outcome::Handoff, self.now, 0).unwrap();
                }
            }
            Op::Restart { reached } => {
                for (u, _) in std::mem::take(&mut self.in_flight) {
                    if reached {
                        self.receive(&u);
                    }
                }
                self.drops_before += drops(&self.client.stats());
                let r = self.random();
                self.client = Client::new(self.cfg.clone(), self.now, r).unwrap();
                if let Some(b) = &self.stored_identity {
                    self.client.restore_identity(b).unwrap();
                }
                if let Some(b) = self.stored_queue.clone() {
                    self.client.restore(&b, self.now).unwrap();
                }
            }
        }
        self.persist();
        self.check_invariants();
    }

    /// The network heals: everything still held must get through.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            for (u, ids) in std::mem::take(&mut self.in_flight) {
                self.receive(&u);
                for id in &ids {
                    *self.acked.entry(id.clone()).or_default() += 1;
                }
                self.client
                    .upload_finished(u.id, Outcome::Status { code: 200, retry_after: None }, self.now, 0)
                    .unwrap();
            }
            self.client.flush();
            self.pump();
            self.persist();
            self.check_invariants();
            if self.in_flight.is_empty() {
                match self.client.poll_timeout(self.now) {
                    None => return,
                    Some(t) => self.now = self.now.max(t).max(self.now + 1),
                }
            }
        }
        panic!("the queue never drained: {:?}", self.client.stats());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Without any dropping policy in play, every accepted event reaches the
    /// collector, whatever the failures, hides and restarts.
    #[test]
    fn nothing_is_lost_without_a_dropping_policy(
        ops in prop::collection::vec(op(false), 1..250),
        in_flight in 1usize..4,
    ) {
        let mut sim = Sim::new(config(false, in_flight));
        for op in ops {
            sim.apply(op);
        }
        sim.drain();
        let missing: Vec<_> = sim.accepted.iter().filter(|id| !sim.server.contains_key(*id)).collect();
        prop_assert!(missing.is_empty(), "{} of {} events never arrived", missing.len(), sim.accepted.len());
        prop_assert_eq!(sim.drops_before + drops(&sim.client.stats()), 0);
    }

    /// With small queues, few attempts and permanent errors, events may be
    /// dropped, but only by a counted policy.
    #[test]
    fn only_counted_policies_drop_events(
        ops in prop::collection::vec(op(true), 1..250),
        in_flight in 1usize..3,
    ) {
        let mut sim = Sim::new(config(true, in_flight));
        for op in ops {
            sim.apply(op);
        }
        sim.drain();
        let missing = sim.accepted.iter().filter(|id| !sim.server.contains_key(*id)).count() as u64;
        let counted = sim.drops_before + drops(&sim.client.stats());
        prop_assert!(missing <= counted, "{missing} events missing but only {counted} drops were counted");
    }
}
