//! PKCS#12 files as the vault returns them for certificates, through `keyvol_pkcs12::open` with
//! the empty password (both of its encodings), as the provider opens them.
//!
//! Checked: no panic, bounded time and memory (the iteration and item caps; libFuzzer's limits);
//! errors are bounded and never repeat the file's bytes.
#![no_main]

use keyvol_fuzz::{assert_bounded, assert_no_echo, message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match keyvol_pkcs12::open(data, "") {
        Ok(contents) => {
            // Its Debug is for logs: counts only, never key bytes.
            let shown = format!("{contents:?}");
            assert!(shown.len() < 64, "{shown}");
        }
        Err(e) => {
            let message = message(&e);
            assert_bounded("pkcs12 error", &message, 512);
            assert_no_echo("pkcs12 error", data, &message, &[]);
        }
    }
});
