//! Feeds arbitrary text to the master-file (RFC 1035 zone file) parser behind `records` and
//! `zone_file`: errors are fine, panics are not.
#![no_main]

use gslbd::dns::name::Name;
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
    let origin = Name::parse("gslb.example.org.", None).unwrap();
    let _ = gslbd::config::master_file::parse(text, &origin, 300);
});
