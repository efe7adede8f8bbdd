//! Feeds arbitrary bytes to the `/notify` body path: the JSON as the admin API decodes it,
//! then every item checked and the valid ones applied to a zone, as the builder does. No
//! input may panic.
#![no_main]

use gslbd::dns::name::Name;
use gslbd::elchi::api::{NotifyJson, apply_push_nodes, check_delete, check_push};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(push) = serde_json::from_slice::<NotifyJson>(data) else { return };
    let apex = Name::parse("gslb.elchi.", None).unwrap();
    let updates: Vec<_> =
        push.records.iter().filter_map(|r| check_push(r).ok().map(|(o, t)| (o, t, r.clone()))).collect();
    let deletes: Vec<_> = push.deletes.iter().filter_map(|d| check_delete(d).ok()).collect();
    let mut nodes = Default::default();
    let _ = apply_push_nodes(&mut nodes, &apex, 300, &updates, &deletes);
});
