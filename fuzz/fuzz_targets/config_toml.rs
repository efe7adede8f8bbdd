//! Feeds arbitrary text to the whole configuration path (TOML with spans, `${VAR}`
//! expansion, validation of every section): a bad file must give errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lookup = |name: &str| (name == "SECRET").then(|| "fuzz-secret-1".to_string());
    let _ = gslbd::config::parse(std::path::Path::new("/nonexistent/fuzz.toml"), text, &lookup);
});
