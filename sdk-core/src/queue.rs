//! The bounded event queue. It only stores and bounds; when to send and what
//! to do after a failure is `delivery`'s business.
//!
//! Entries stay in arrival order. An entry is pending, part of one upload in
//! flight, or handed to the browser's beacon without a receipt. Keeping all
//! three in one queue means one bound covers everything the client holds, and
//! a snapshot taken at any moment holds every event not yet acknowledged.

use std::collections::VecDeque;

use crate::time::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    InFlight(u64),
    /// Handed to `sendBeacon`; kept (and persisted) until `until` in case
    /// the page dies before the browser could deliver it.
    Unconfirmed {
        until: Millis,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub seq: u64,
    pub message_id: Box<str>,
    /// When the event happened; bounds how long it may be retried.
    pub created: Millis,
    /// When this process queued it; drives the batch age trigger.
    pub enqueued: Millis,
    /// Server-side failures so far.
    pub attempts: u32,
    pub json: Box<str>,
    pub state: State,
}

impl Entry {
    pub fn bytes(&self) -> usize {
        self.json.len()
    }
}

#[derive(Debug)]
pub(crate) struct Queue {
    entries: VecDeque<Entry>,
    next_seq: u64,
    bytes: usize,
    pending: usize,
    pending_bytes: usize,
    unconfirmed: usize,
    max_events: usize,
    max_bytes: usize,
}

impl Queue {
    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        Queue {
            entries: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            pending: 0,
            pending_bytes: 0,
            unconfirmed: 0,
            max_events,
            max_bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn pending(&self) -> usize {
        self.pending
    }

    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Earliest end of a beacon grace period, without a scan when there
    /// are none (the common case, checked after every `track`).
    pub fn next_unconfirmed_expiry(&self) -> Option<Millis> {
        if self.unconfirmed == 0 {
            return None;
        }
        self.entries
            .iter()
            .filter_map(|e| match e.state {
                State::Unconfirmed { until } => Some(until),
                _ => None,
            })
            .min()
    }

    /// Puts beacon hand-offs whose grace period ended back to pending: the
    /// page outlived the beacon without any receipt, so sending again is the
    /// only way to be sure (the collector de-duplicates). Returns how many.
    pub fn requeue_unconfirmed(&mut self, now: Millis) -> usize {
        if self.unconfirmed == 0 {
            return 0;
        }
        let mut n = 0;
        for e in self.entries.iter_mut() {
            if let State::Unconfirmed { until } = e.state {
                if until <= now {
                    e.state = State::Pending;
                    self.pending += 1;
                    self.pending_bytes += e.json.len();
                    n += 1;
                }
            }
        }
        self.unconfirmed -= n;
        n
    }

    /// Whether any event up to `seq` still awaits delivery (pending or in
    /// flight). Entries are in sequence order, so this stops early.
    pub fn unsettled_through(&self, seq: u64) -> bool {
        self.entries
            .iter()
            .take_while(|e| e.seq <= seq)
            .any(|e| matches!(e.state, State::Pending | State::InFlight(_)))
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.next_seq.checked_sub(1)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    #[cfg(test)]
    pub fn contains(&self, message_id: &str) -> bool {
        self.entries.iter().any(|e| &*e.message_id == message_id)
    }

    /// Adds an event as pending; returns how many undelivered events had to
    /// go to make room (the newcomer included, if it could not be placed).
    /// Beacon-handed events go first (they were most likely delivered), then
    /// the oldest pending; events in flight are never dropped because their
    /// outcome is still to come.
    pub fn push(
        &mut self,
        message_id: Box<str>,
        json: Box<str>,
        created: Millis,
        enqueued: Millis,
        attempts: u32,
    ) -> usize {
        let size = json.len();
        let mut dropped = 0;
        while self.entries.len() + 1 > self.max_events || self.bytes + size > self.max_bytes {
            // The counter spares a scan of a full queue on every push.
            let unconfirmed = (self.unconfirmed > 0)
                .then(|| self.entries.iter().position(|e| matches!(e.state, State::Unconfirmed { .. })))
                .flatten();
            let victim = unconfirmed.or_else(|| self.entries.iter().position(|e| e.state == State::Pending));
            match victim.and_then(|i| self.remove_at(i)) {
                Some(_) => dropped += 1,
                // Only in-flight events left: the config guarantees they
                // fit beside one more event, so this is unreachable; refuse
                // the newcomer rather than break the bound.
                None => return dropped + 1,
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += size;
        self.pending += 1;
        self.pending_bytes += size;
        self.entries.push_back(Entry {
            seq,
            message_id,
            created,
            enqueued,
            attempts,
            json,
            state: State::Pending,
        });
        dropped
    }

    fn remove_at(&mut self, i: usize) -> Option<Entry> {
        let e = self.entries.remove(i)?;
        self.forget(&e);
        Some(e)
    }

    /// Takes a removed entry out of the running totals.
    fn forget(&mut self, e: &Entry) {
        self.bytes -= e.bytes();
        match e.state {
            State::Pending => {
                self.pending -= 1;
                self.pending_bytes -= e.bytes();
            }
            State::Unconfirmed { .. } => self.unconfirmed -= 1,
            State::InFlight(_) => {}
        }
    }

    pub fn first_pending(&self) -> Option<&Entry> {
        self.entries.iter().find(|e| e.state == State::Pending)
    }

    /// Marks the oldest pending events as in flight for `upload`, up to the
    /// limits (counting the comma between events), and returns their JSON
    /// in order. An event larger than `max_bytes` still goes, alone, so
    /// it can never block the queue.
    pub fn take(&mut self, upload: u64, max_events: usize, max_bytes: usize) -> Vec<&str> {
        let mut n = 0;
        let mut size = 0;
        for e in self.entries.iter_mut() {
            if n >= max_events {
                break;
            }
            if e.state != State::Pending {
                continue;
            }
            let cost = e.bytes() + usize::from(n > 0);
            if n > 0 && size + cost > max_bytes {
                break;
            }
            e.state = State::InFlight(upload);
            self.pending -= 1;
            self.pending_bytes -= e.bytes();
            n += 1;
            size += cost;
        }
        self.entries.iter().filter(|e| e.state == State::InFlight(upload)).map(|e| &*e.json).collect()
    }

    /// Moves the events of `upload` to a new state; returns how many moved.
    pub fn set_state_of(&mut self, upload: u64, state: State) -> usize {
        let mut n = 0;
        for e in self.entries.iter_mut() {
            if e.state == State::InFlight(upload) {
                e.state = state;
                match state {
                    State::Pending => {
                        self.pending += 1;
                        self.pending_bytes += e.bytes();
                    }
                    State::Unconfirmed { .. } => self.unconfirmed += 1,
                    State::InFlight(_) => {}
                }
                n += 1;
            }
        }
        n
    }

    /// Removes every entry matching `pred`, returning them in order.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&Entry) -> bool) -> Vec<Entry> {
        let mut removed = Vec::new();
        let mut kept = VecDeque::with_capacity(self.entries.len());
        for e in self.entries.drain(..) {
            if pred(&e) {
                removed.push(e);
            } else {
                kept.push_back(e);
            }
        }
        self.entries = kept;
        for e in &removed {
            self.forget(e);
        }
        removed
    }

    /// Applies `f` to the events of `upload` (e.g. to count an attempt).
    pub fn for_upload(&mut self, upload: u64, mut f: impl FnMut(&mut Entry)) {
        for e in self.entries.iter_mut().filter(|e| e.state == State::InFlight(upload)) {
            f(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(q: &mut Queue, id: &str, size: usize) -> usize {
        q.push(id.into(), "x".repeat(size).into(), 0, 0, 0)
    }

    #[test]
    fn drops_oldest_when_full_by_count_or_bytes() {
        let mut q = Queue::new(3, 100);
        for id in ["a", "b", "c"] {
            assert_eq!(push(&mut q, id, 10), 0);
        }
        assert_eq!(push(&mut q, "d", 10), 1);
        assert!(!q.contains("a") && q.contains("d"));
        assert_eq!(push(&mut q, "e", 80), 1);
        assert_eq!(q.len(), 3);
        assert_eq!(q.bytes(), 100);
        assert_eq!((q.pending(), q.pending_bytes()), (3, 100));
        assert_eq!(push(&mut q, "f", 95), 3);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn never_drops_in_flight_events() {
        let mut q = Queue::new(2, 1000);
        push(&mut q, "a", 10);
        push(&mut q, "b", 10);
        assert_eq!(q.take(7, 1, 1000), vec!["x".repeat(10)]);
        assert_eq!(push(&mut q, "c", 10), 1);
        assert!(q.contains("a") && !q.contains("b") && q.contains("c"));
    }

    #[test]
    fn prefers_dropping_unconfirmed_beacon_events() {
        let mut q = Queue::new(2, 1000);
        push(&mut q, "a", 10);
        push(&mut q, "b", 10);
        q.take(1, 10, 1000);
        q.set_state_of(1, State::Unconfirmed { until: 5 });
        assert_eq!(q.next_unconfirmed_expiry(), Some(5));
        assert_eq!(push(&mut q, "c", 10), 1, "without a receipt a hand-off counts as a loss");
        assert!(!q.contains("a") && q.contains("b"));
        assert_eq!(q.next_unconfirmed_expiry(), Some(5));
        assert_eq!(q.requeue_unconfirmed(4), 0);
        assert_eq!(q.requeue_unconfirmed(5), 1);
        assert_eq!(q.next_unconfirmed_expiry(), None);
        assert_eq!((q.pending(), q.pending_bytes()), (2, 20));
    }

    #[test]
    fn take_respects_limits_and_order() {
        let mut q = Queue::new(10, 1000);
        for id in ["a", "b", "c", "d"] {
            push(&mut q, id, 10);
        }
        assert_eq!(q.take(1, 10, 21).len(), 2);
        assert_eq!(q.first_pending().map(|e| &*e.message_id), Some("c"));
        assert_eq!(q.take(2, 1, 1000).len(), 1);
        // an oversized first event still goes alone
        assert_eq!(q.take(3, 10, 1).len(), 1);
        assert_eq!(q.pending(), 0);
        assert_eq!(q.set_state_of(1, State::Pending), 2);
        assert_eq!((q.pending(), q.pending_bytes()), (2, 20));
        let gone = q.remove_where(|e| e.state == State::InFlight(2));
        assert_eq!(gone.len(), 1);
        assert_eq!(q.bytes(), 30);
    }
}
