//! The UniFFI binding generator, built from this crate so that one
//! Cargo.lock pins it to the uniffi version of the library. Behind the
//! `bindgen` feature (uniffi's `cli`, with clap and the template engines),
//! so `cargo clippy --workspace --all-targets` and the tests never build it:
//!
//! ```sh
//! cargo build -p sdk-mobile --release
//! cargo run -p sdk-mobile --features bindgen --bin uniffi-bindgen -- generate \
//!     --library target/release/libsdk_mobile.so --language kotlin --no-format --out-dir sdk-mobile/kotlin
//! ```

fn main() {
    uniffi::uniffi_bindgen_main()
}
