//! Any bytes as a stored queue snapshot (what the browser's storage or the
//! app's file hands back, possibly truncated, corrupted or from another
//! version): restoring or adopting it must return, never panic, and what the
//! client then holds must upload and snapshot again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdk_core::{Client, Config};

fn client() -> Client {
    Client::new(Config::new("http://127.0.0.1:1", "k"), 0, [0; 16]).expect("the default config is valid")
}

fuzz_target!(|data: &[u8]| {
    let mut c = client();
    let restored = c.restore(data, 0);
    let replaced = c.replace_queue(Some(data), 0);
    // The same bytes are read the same way by both entry points.
    assert_eq!(restored.is_ok(), replaced.is_ok());
    let _ = c.next_upload(0);
    // Whatever was adopted must survive the client's own round trip.
    let snapshot = c.snapshot();
    let mut again = client();
    if let Err(e) = again.restore(&snapshot, 0) {
        panic!("a snapshot the client wrote does not restore: {e}");
    }
});
