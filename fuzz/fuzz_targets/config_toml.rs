//! Feeds arbitrary text to the whole configuration path (TOML with spans, `${VAR}`
//! expansion, validation of every section): a bad file must give errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The zone-file scanner (domain 0.12) panics on some input; gslbd catches that and reports
/// an error. libFuzzer's panic hook would abort on the caught panic too, so this target
/// prints panics instead: an uncaught one still aborts (it cannot unwind out of the fuzzer).
fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
}

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lookup = |name: &str| (name == "SECRET").then(|| "fuzz-secret-1".to_string());
    let _ = gslbd::config::parse(std::path::Path::new("/nonexistent/fuzz.toml"), text, &lookup);
});
