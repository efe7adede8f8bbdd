//! Feeds arbitrary bytes to the controller response decoder (`/dns/snapshot` and
//! `/dns/changes` bodies, decoded in one pass) and the record-list decoder of the state
//! files: they must never panic, whatever a controller or a damaged file holds.
#![no_main]

use gslbd::dns::name::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let apex = Name::parse("gslb.elchi.", None).unwrap();
    let _ = gslbd::elchi::response::decode(data, &apex, 300);
    for (sorted, pushed) in [(false, false), (true, true)] {
        let _ = gslbd::elchi::list::decode(data, &apex, 300, sorted, pushed);
    }
});
