//! Feeds arbitrary text to the master-file (RFC 1035 zone file) parser behind `records` and
//! `zone_file`: errors are fine, panics are not.
#![no_main]

use gslbd::dns::name::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let origin = Name::parse("gslb.example.org.", None).unwrap();
    let _ = gslbd::config::master_file::parse(text, &origin, 300);
});
