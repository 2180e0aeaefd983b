//! The client: one object per configured SDK instance that ties events,
//! queue, delivery and persistence together. It is a state machine in the
//! style of quinn-proto: every call takes the current time (and random bytes
//! where it needs them) and returns what the binding must do.
//!
//! A binding's loop is:
//! 1. call `track`/`page`/... as the host calls the SDK;
//! 2. whenever `poll_timeout` says so (or after any call), call
//!    `next_upload` until it stops returning uploads, perform each, and report
//!    it with `upload_finished`;
//! 3. call `take_persist` and write/remove what it returns;
//! 4. sleep until `poll_timeout`; no timer at all when it returns `None`.

use serde_json::value::RawValue;

use crate::config::{Config, ConfigError};
use crate::context::{Context, Environment, Page};
use crate::delivery::{Delivery, DeliveryError, NextUpload, Outcome, Upload};
use crate::event::{self, check_name, check_object, EventError, Kind, Parts};
use crate::identity::Identity;
use crate::queue::{Queue, State};
use crate::snapshot::{self, EventOut, SnapshotError};
use crate::stats::Stats;
use crate::time::Millis;

/// What the binding should do with one storage slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    Write(Vec<u8>),
    Remove,
}

/// Storage work handed out by [`Client::take_persist`]. `None` means leave
/// that slot as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persist {
    pub queue: Option<Store>,
    pub identity: Option<Store>,
}

impl Persist {
    pub fn is_empty(&self) -> bool {
        self.queue.is_none() && self.identity.is_none()
    }
}

#[derive(Debug)]
pub struct Client {
    config: Config,
    context: Context,
    identity: Identity,
    queue: Queue,
    delivery: Delivery,
    stats: Stats,
    /// Time of the first queue change not yet handed out for persisting.
    queue_dirty_since: Option<Millis>,
    identity_dirty: bool,
}

impl Client {
    /// `random` seeds the device id used until a stored identity is restored.
    pub fn new(config: Config, random: [u8; 16]) -> Result<Client, ConfigError> {
        config.validate()?;
        Ok(Client {
            context: Context::new(config.library.clone()),
            identity: Identity::new(random),
            queue: Queue::new(config.queue.max_events, config.queue.max_bytes),
            delivery: Delivery::new(&config),
            stats: Stats::default(),
            queue_dirty_since: None,
            identity_dirty: true,
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn set_environment(&mut self, env: Environment) {
        self.context.set_environment(env);
    }

    pub fn set_page(&mut self, page: Page) {
        self.context.set_page(page);
    }

    /// Records a `track` event; returns its messageId.
    pub fn track(
        &mut self,
        event: &str,
        properties: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let r = check_name("event name", event, &self.config.limits)
            .and_then(|()| check_object("properties", properties, &self.config.limits));
        let props = self.counted(r)?;
        self.record(Kind::Track { event }, props, None, now, random)
    }

    /// Records a `page` event. Its properties start from the current page
    /// context (url, path, referrer, title, search), as analytics.js does,
    /// and the caller's properties override them.
    pub fn page(
        &mut self,
        name: Option<&str>,
        properties: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let limits = &self.config.limits;
        let r = name
            .map_or(Ok(()), |n| check_name("page name", n, limits))
            .and_then(|()| check_object("properties", properties, limits));
        let user = self.counted(r)?;
        let mut merged = match self.context.page().and_then(|p| serde_json::to_string(p).ok()) {
            Some(page) => event::parse_object(&page),
            None => event::Object::new(),
        };
        if let Some(user) = user {
            merged.extend(event::parse_object(user.get()));
        }
        let merged = Some(event::object_json(&merged));
        self.record(Kind::Page { name }, merged.as_deref(), None, now, random)
    }

    /// Records a `screen` event (apps).
    pub fn screen(
        &mut self,
        name: &str,
        properties: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let limits = &self.config.limits;
        let r = check_name("screen name", name, limits)
            .and_then(|()| check_object("properties", properties, limits));
        let props = self.counted(r)?;
        self.record(Kind::Screen { name }, props, None, now, random)
    }

    /// Attaches a known user id (and traits) to this device and records an
    /// `identify` event. Later events carry the user id.
    pub fn identify(
        &mut self,
        user_id: &str,
        traits: Option<&str>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let limits = &self.config.limits;
        let r = check_name("user id", user_id, limits).and_then(|()| check_object("traits", traits, limits));
        let traits = self.counted(r)?;
        let previous = self.identity.user_id.replace(user_id.to_owned());
        let result = self.record(Kind::Identify, None, traits, now, random);
        match &result {
            Ok(_) => {
                if let Some(t) = traits {
                    self.identity.merge_traits(event::parse_object(t.get()));
                }
                self.identity_dirty = true;
            }
            Err(_) => self.identity.user_id = previous,
        }
        result
    }

    fn counted<T>(&mut self, r: Result<T, EventError>) -> Result<T, EventError> {
        if r.is_err() {
            self.stats.rejected += 1;
        }
        r
    }

    fn record(
        &mut self,
        kind: Kind<'_>,
        properties: Option<&RawValue>,
        traits: Option<&RawValue>,
        now: Millis,
        random: [u8; 16],
    ) -> Result<String, EventError> {
        let encoded = event::encode(
            Parts {
                kind,
                properties,
                traits,
                anonymous_id: &self.identity.anonymous_id,
                user_id: self.identity.user_id.as_deref(),
                context: self.context.json(),
                now,
                random,
            },
            &self.config.limits,
        );
        let encoded = self.counted(encoded)?;
        let id = encoded.message_id.clone();
        let dropped = self.queue.push(encoded.message_id.into_boxed_str(), encoded.json, now, now, 0);
        self.stats.dropped_queue_full += dropped as u64;
        self.stats.accepted += 1;
        self.mark_dirty(now);
        Ok(id)
    }

    fn mark_dirty(&mut self, now: Millis) {
        self.queue_dirty_since.get_or_insert(now);
    }

    /// Sends everything queued now without waiting for a full batch or the
    /// age trigger (backoff still applies).
    pub fn flush(&mut self) {
        self.delivery.flush(&self.queue);
    }

    /// The platform reports connectivity again: end a wait caused by
    /// network errors.
    pub fn network_available(&mut self) {
        self.delivery.network_available();
    }

    pub fn next_upload(&mut self, now: Millis) -> NextUpload {
        self.housekeeping(now);
        let next = self.delivery.next_upload(&mut self.queue, &mut self.stats, now);
        if matches!(next, NextUpload::Upload(_)) {
            self.mark_dirty(now);
        }
        next
    }

    /// An upload for `navigator.sendBeacon` (at most `max_body_bytes`),
    /// while the page is hidden or being unloaded. Call until `None`, or
    /// until the browser refuses one (report [`Outcome::NotSent`] and stop).
    pub fn next_beacon(&mut self, now: Millis, max_body_bytes: usize) -> Option<Upload> {
        self.housekeeping(now);
        let upload = self.delivery.next_beacon(&mut self.queue, &mut self.stats, now, max_body_bytes);
        if upload.is_some() {
            self.mark_dirty(now);
        }
        upload
    }

    /// Reports what happened to an upload. `random` feeds the backoff jitter.
    pub fn upload_finished(
        &mut self,
        id: u64,
        outcome: Outcome,
        now: Millis,
        random: u32,
    ) -> Result<(), DeliveryError> {
        self.delivery.finished(&mut self.queue, &mut self.stats, id, &outcome, now, random)?;
        self.mark_dirty(now);
        Ok(())
    }

    /// Sends beacon hand-offs again once their grace period is over (no
    /// receipt came, and this page is still alive), and drops events past
    /// their maximum age.
    fn housekeeping(&mut self, now: Millis) {
        let requeued = self.queue.requeue_unconfirmed(now);
        self.stats.beacons_requeued += requeued as u64;
        let max_age = self.config.retry.max_event_age_ms;
        let expired = self
            .queue
            .remove_where(|e| e.state == State::Pending && now.saturating_sub(e.created) > max_age)
            .len();
        self.stats.dropped_expired += expired as u64;
        if requeued + expired > 0 {
            self.mark_dirty(now);
        }
    }

    /// The earliest time the binding must call back (`next_upload` and
    /// `take_persist`); `None` means no timer is needed.
    pub fn poll_timeout(&self, now: Millis) -> Option<Millis> {
        let upload = self.delivery.due(&self.queue, now);
        let persist = self.persist_due();
        let beacon = self.queue.next_unconfirmed_expiry();
        [upload, persist, beacon].into_iter().flatten().min()
    }

    fn persist_due(&self) -> Option<Millis> {
        if self.identity_dirty {
            return Some(0);
        }
        let since = self.queue_dirty_since?;
        // An empty queue is written at once: it is cheap, and it means no
        // timer has to stay armed while nothing is queued.
        if self.queue.len() == 0 {
            return Some(since);
        }
        Some(since.saturating_add(self.config.queue.persist_debounce_ms))
    }

    /// Storage work that is due (or all of it with `force`, when the page is
    /// being hidden or the app backgrounded). The queue snapshot holds every
    /// unacknowledged event, in flight ones included, so a crash between
    /// send and acknowledgement loses nothing.
    pub fn take_persist(&mut self, now: Millis, force: bool) -> Persist {
        let mut out = Persist::default();
        if self.identity_dirty {
            out.identity = Some(Store::Write(self.identity.encode()));
            self.identity_dirty = false;
        }
        let due = self.persist_due().is_some_and(|t| t <= now);
        if self.queue_dirty_since.is_some() && (force || due) {
            self.queue_dirty_since = None;
            if self.queue.len() == 0 {
                self.stats.not_persisted = 0;
                out.queue = Some(Store::Remove);
            } else {
                let (bytes, left_out) = self.export_queue();
                self.stats.not_persisted = left_out;
                out.queue = Some(Store::Write(bytes));
            }
        }
        out
    }

    fn export_queue(&self) -> (Vec<u8>, usize) {
        let events = self.queue.iter().map(|e| EventOut {
            id: &e.message_id,
            t: e.created,
            a: e.attempts,
            e: &e.json,
        });
        snapshot::encode(self.delivery.backoff(), events, self.config.queue.max_persist_bytes)
    }

    /// The queue snapshot as it is now, regardless of what is due.
    pub fn snapshot(&self) -> Vec<u8> {
        self.export_queue().0
    }

    /// Adds the events of a snapshot (this process's previous life, or a
    /// queue adopted from a closed tab). Events already queued are skipped
    /// by messageId, so adopting twice sends nothing twice. Restored events
    /// are due at once (after any retry wait the snapshot carries). Returns
    /// how many were added.
    pub fn restore(&mut self, bytes: &[u8], now: Millis) -> Result<usize, SnapshotError> {
        let decoded = decode(bytes)?;
        Ok(self.merge(decoded, now))
    }

    /// Replaces the queue with a stored snapshot (or with nothing). A page
    /// coming back from the back/forward cache does this: it stored all it
    /// had when it left, and another page of the tab may have sent some of
    /// it and added its own since, so the stored queue is the truth. A
    /// snapshot that cannot be read changes nothing.
    pub fn replace_queue(&mut self, bytes: Option<&[u8]>, now: Millis) -> Result<usize, SnapshotError> {
        let decoded = bytes.map(decode).transpose()?;
        self.hand_over(now);
        Ok(decoded.map_or(0, |d| self.merge(d, now)))
    }

    fn merge(&mut self, decoded: snapshot::Decoded<'_>, now: Millis) -> usize {
        if let Some(b) = decoded.backoff {
            self.delivery.merge_backoff(b);
        }
        // One pass with a set: restoring must stay linear in the queue size.
        // Inserted one by one: `collect` would sort first and ship two sort
        // implementations in the wasm for no gain here.
        let mut known = std::collections::BTreeSet::new();
        for e in self.queue.iter() {
            known.insert(e.message_id.clone());
        }
        let mut added = 0;
        for ev in decoded.events {
            if !known.insert(ev.id.as_ref().into()) {
                continue;
            }
            let dropped = self.queue.push(ev.id.into(), ev.e.get().into(), ev.t, 0, ev.a);
            self.stats.dropped_queue_full += dropped as u64;
            added += 1;
        }
        self.stats.restored += added as u64;
        if added > 0 {
            self.mark_dirty(now);
        }
        added
    }

    /// Gives up every queued event: the stored queue replaces them (see
    /// [`Client::replace_queue`]). Returns how many undelivered events went.
    fn hand_over(&mut self, now: Millis) -> usize {
        let n = self.queue.remove_where(|_| true).len();
        self.stats.handed_over += n as u64;
        if n > 0 {
            self.mark_dirty(now);
        }
        n
    }

    /// Replaces the fresh identity with the stored one.
    pub fn restore_identity(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.identity = Identity::decode(bytes)?;
        self.identity_dirty = false;
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.queued = self.queue.len();
        s.queued_bytes = self.queue.bytes();
        for e in self.queue.iter() {
            match e.state {
                State::InFlight(_) => s.in_flight += 1,
                State::Unconfirmed { .. } => s.unconfirmed += 1,
                State::Pending => {}
            }
        }
        s.backoff_until = self.delivery.backoff_until();
        s
    }

    /// Uploads handed out and not yet reported.
    pub fn uploads_in_flight(&self) -> usize {
        self.delivery.in_flight_uploads()
    }
}

/// Snapshot bytes as text, then parsed; any failure is a typed error.
fn decode(bytes: &[u8]) -> Result<snapshot::Decoded<'_>, SnapshotError> {
    let text = std::str::from_utf8(bytes).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    snapshot::decode(text)
}

#[cfg(test)]
mod tests;
