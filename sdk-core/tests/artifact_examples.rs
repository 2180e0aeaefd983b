//! Every artifact the documentation shows and every file in
//! `tests/artifacts/` loads; fragments shown in `docs/artifact.md` compile
//! in a complete artifact; and the demo shop's artifact tells its story.
//!
//! `cargo test -p sdk-core --test artifact_examples`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use sdk_core::artifact::{Artifact, Limits};
use sdk_core::decide::{DecideOptions, Engine};
use sdk_core::profile::Profile;
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The ```json blocks of a Markdown file.
fn json_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        match (&mut cur, line.trim_start()) {
            (None, l) if l.starts_with("```json") => cur = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => out.extend(cur.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// Puts a documented fragment (a placement, offer, audience or experiment)
/// into an artifact that has what it refers to.
fn embed(fragment: &Value) -> Value {
    let mut doc = json!({
        "version": 1, "bucketing": "murmur3_x86_32/v1",
        "placements": [
            {"id": "home", "default": {"id": "home-d", "content": null}},
            {"id": "hero", "default": {"id": "hero-d", "content": null}}
        ],
        "audiences": [{"id": "slacks-browsers", "condition": true}],
        "offers": [{"id": "hero-sale", "placement": "hero", "content": null}]
    });
    let key = if fragment.get("default").is_some() {
        doc["placements"] = json!([fragment, {"id": "hero", "default": {"id": "hero-d", "content": null}}]);
        return doc;
    } else if fragment.get("variants").is_some() {
        "experiments"
    } else if fragment.get("placement").is_some() {
        "offers"
    } else {
        "audiences"
    };
    let list = doc[key].as_array_mut().map(|a| a.len());
    match list {
        Some(_) => doc[key].as_array_mut().unwrap().push(fragment.clone()),
        None => doc[key] = json!([fragment]),
    }
    doc
}

#[test]
fn documented_and_shipped_artifacts_load() {
    let md = std::fs::read_to_string(root().join("docs/artifact.md")).unwrap();
    let blocks = json_blocks(&md);
    let (mut whole, mut fragments) = (0, 0);
    for b in &blocks {
        let v: Value =
            serde_json::from_str(b).unwrap_or_else(|e| panic!("docs block is not JSON ({e}):\n{b}"));
        let doc = if v.get("version").is_some() {
            whole += 1;
            v
        } else {
            fragments += 1;
            embed(&v)
        };
        if let Err(e) = Artifact::parse(doc.to_string().as_bytes(), &Limits::default()) {
            panic!("docs example does not load: {e}\n{b}");
        }
    }
    let mut files = 0;
    for entry in std::fs::read_dir(root().join("tests/artifacts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let bytes = std::fs::read(&path).unwrap();
            Artifact::parse(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files += 1;
        }
    }
    println!("docs/artifact.md: {whole} artifacts, {fragments} fragments; tests/artifacts: {files} files");
    assert!(whole >= 1 && fragments >= 4 && files >= 2, "{whole} {fragments} {files}");
}

#[test]
fn the_demo_shop_artifact_tells_the_story() {
    let mut e = Engine::default();
    e.load(&std::fs::read(root().join("tests/artifacts/shop.json")).unwrap(), None).unwrap();
    let t0 = 1_795_512_600_000; // Tuesday 2026-11-24 09:30Z
    let o = DecideOptions {
        max: 1,
        context: None,
        now: t0,
        utc_offset_minutes: 60,
        device_id: Some("d-1"),
        personalization: true,
        random: [0; 16],
    };
    let mut p = Profile::default();
    let top = |p: &Profile| e.decide("home", &o, p).unwrap()[0].offer_id.clone();
    assert_eq!(top(&p), "home-welcome");
    for _ in 0..2 {
        p.record("Product Viewed", &json!({"productId": "slacks-01"}), t0 - 1000);
    }
    assert_eq!(top(&p), "slacks-discount");
    p.record("Order Completed", &json!({"products": [{"productId": "slacks-01"}]}), t0 - 500);
    // Bought: the discount is gone; a recent buyer is a VIP now.
    assert_eq!(top(&p), "vip-shipping");
    let hero = e.decide("hero", &o, &p).unwrap();
    assert_eq!(hero[0].experiment_id.as_deref(), Some("hero-banner-test"));
}
