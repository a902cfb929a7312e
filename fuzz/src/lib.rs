//! Checks the fuzz targets share: what an error message may hold, how long it may be.

use std::collections::HashSet;
use std::error::Error;

/// Bytes in a row of the input that an error message must not repeat. Shorter runs occur in
/// keyvol's own wording by chance (`secret`, `PRIVATE KEY`); 16 do not.
pub const ECHO_WINDOW: usize = 16;

/// FNV-1a of one window. Runs are compared by hash first so that libFuzzer's comparison hooks
/// never see the message next to the input: given the bytes of both, it copies the message's
/// wording into inputs and reports an echo that the code under test never made.
fn hash(run: &[u8]) -> u64 {
    run.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Panics when `message` repeats any [`ECHO_WINDOW`] bytes in a row of `input` (the secret value,
/// file or answer being parsed), unless that run also occurs in one of `allowed` (names the
/// caller put in the message itself).
pub fn assert_no_echo(what: &str, input: &[u8], message: &str, allowed: &[&str]) {
    let inside: HashSet<u64> = allowed
        .iter()
        .flat_map(|a| a.as_bytes().windows(ECHO_WINDOW).map(hash))
        .collect();
    let said: Vec<&[u8]> = message
        .as_bytes()
        .windows(ECHO_WINDOW)
        .filter(|w| !inside.contains(&hash(w)))
        .collect();
    let hashes: HashSet<u64> = said.iter().map(|w| hash(w)).collect();
    if hashes.is_empty() {
        return;
    }
    for run in input.windows(ECHO_WINDOW) {
        if hashes.contains(&hash(run)) && said.contains(&run) {
            panic!(
                "{what}: the error repeats input bytes {:?}: {message:?}",
                String::from_utf8_lossy(run)
            );
        }
    }
}

/// Panics when `message` is longer than `max` bytes: messages end up in gRPC statuses, events and
/// log lines, so a long input must not make a long message.
pub fn assert_bounded(what: &str, message: &str, max: usize) {
    assert!(
        message.len() <= max,
        "{what}: a {}-byte message (more than {max}): {:?}…",
        message.len(),
        message.chars().take(300).collect::<String>()
    );
}

/// An error and its causes, joined with `": "`, as the edges print them — but built without
/// comparing any text (`keyvol_core::report::chain` looks for each cause in its wrapper): every
/// comparison feeds libFuzzer's dictionary, and a message's wording in the dictionary ends up
/// in inputs, where the echo check would blame the code for it.
pub fn message(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(cause) = cur {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        cur = cause.source();
    }
    out
}
