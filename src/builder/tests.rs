//! Unit tests of the builder: coalescing, failure containment, pushes and their replies.

use std::path::Path;

use tokio::sync::oneshot;

use super::*;
use crate::elchi::api::RecordJson;
use crate::health::Observations;
use crate::server::query::{MAX_MESSAGE, Responder, Transport};

fn state() -> State {
    state_with(&Observations::default())
}

fn state_with(observations: &Observations) -> State {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[state]\ndir = \"{}\"\n[[zone]]\nname = \"gslb.example.org\"\nns = [\"ns1.gslb.example.org\"]\n\
         [[zone.pool]]\nname = \"pool\"\n[zone.pool.check]\ntype = \"none\"\n[[zone.pool.member]]\nname = \"a\"\nipv4 = [\"192.0.2.1\"]\n\
         [[zone.pool]]\nname = \"checked\"\nwhen_all_down = \"nodata\"\n[zone.pool.check]\ntype = \"tcp\"\nport = 9\nfall = 1\n\
         [[zone.pool.member]]\nname = \"b\"\nipv4 = [\"192.0.2.2\"]\n\
         [[zone]]\nname = \"other.example\"\nns = [\"ns1.other.example\"]\n",
        dir.keep().display()
    );
    let config = crate::config::parse(Path::new("t.toml"), &text, &|_| None).unwrap();
    State::new(config, observations.clone())
}

/// Makes this instance's probes observe every checked target down, as probe tasks would.
fn probes_fail(s: &State, observations: &Observations) {
    let targets = crate::health::targets(&s.config());
    let table = crate::health::probed::ProbeTable::for_targets(&targets, &observations.probed.load());
    for t in &targets {
        let slot = table.slot(t).unwrap();
        table.record(t, &slot, &Err::<(), _>("refused"));
    }
    observations.probed.store(Arc::new(table));
}

fn push(name: &str, ip: &str) -> (Event, oneshot::Receiver<PushReply>) {
    let (reply, rx) = oneshot::channel();
    let record = RecordJson {
        name: name.into(),
        rtype: "A".into(),
        ttl: 30,
        ips: vec![ip.into()],
        failover: None,
        pushed: false,
    };
    let body = NotifyJson { records: vec![record], deletes: Vec::new() };
    (Event::Push { body: Box::new(body), atomic: false, reply }, rx)
}

/// The A answer count for `name` in the current snapshot.
fn answers(state: &State, name: &str) -> u16 {
    let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut out = vec![0u8; MAX_MESSAGE];
    Responder::default()
        .respond(&state.handle().load(), &q, &mut out, Transport::Udp, std::net::IpAddr::from([127, 0, 0, 1]))
        .unwrap();
    u16::from_be_bytes([out[6], out[7]])
}

/// A thousand queued health changes and pushes are one build and one publish.
#[test]
fn queued_events_are_one_build() {
    let mut s = state();
    let before = s.handle().load().generation;
    let mut events: Vec<Event> = (0..1000).map(|_| Event::HealthChanged).collect();
    let mut replies = Vec::new();
    for i in 0..20 {
        let (e, rx) = push(&format!("p{i}.gslb.example.org"), "192.0.2.9");
        events.push(e);
        replies.push(rx);
    }
    s.apply(events, None);
    assert_eq!(s.handle().load().generation, before + 1);
    for mut rx in replies {
        let reply = rx.try_recv().expect("answered after the build").unwrap();
        assert_eq!(reply.updated, 1);
    }
    assert_eq!(answers(&s, "p19.gslb.example.org"), 1);
}

const GSLB: &[u8] = b"\x04gslb\x07example\x03org\x00";
const OTHER: &[u8] = b"\x05other\x07example\x00";

/// A health change recompiles only the pools' answers (the zone's dynamic layer), never its
/// base nor another zone; a push compiles only its names into its zone's overlay.
#[test]
fn changes_rebuild_only_what_they_touch() {
    let observations = Observations::default();
    let mut s = state_with(&observations);
    let snap = s.handle().load();
    let (gslb, other) = (snap.zones[GSLB].clone(), snap.zones[OTHER].clone());
    assert!(gslb.dynamic.is_some() && other.dynamic.is_none());
    assert_eq!(answers(&s, "checked.gslb.example.org"), 1);
    probes_fail(&s, &observations);
    s.apply(vec![Event::HealthChanged], None);
    assert_eq!(answers(&s, "checked.gslb.example.org"), 0, "the checked member is down");
    let snap = s.handle().load();
    assert!(Arc::ptr_eq(&snap.zones[GSLB].base, &gslb.base), "the base of the pools' zone is reused");
    assert!(!Arc::ptr_eq(snap.zones[GSLB].dynamic.as_ref().unwrap(), gslb.dynamic.as_ref().unwrap()));
    assert!(Arc::ptr_eq(&snap.zones[OTHER].base, &other.base), "the zone without pools is reused");
    assert_eq!(answers(&s, "pool.gslb.example.org"), 1, "the pool answers from its layer");
    let (e, _rx) = push("x.other.example", "192.0.2.7");
    s.apply(vec![e], None);
    let snap2 = s.handle().load();
    assert!(Arc::ptr_eq(&snap2.zones[GSLB].base, &snap.zones[GSLB].base));
    assert!(snap2.zones[GSLB].overlay.is_none());
    assert!(Arc::ptr_eq(&snap2.zones[OTHER].base, &snap.zones[OTHER].base), "the base is reused");
    let overlay = snap2.zones[OTHER].overlay.as_ref().expect("the push is in the overlay");
    assert!(overlay.nodes.len() <= 3, "the overlay holds the pushed name, its new parent and the apex");
    assert_eq!(answers(&s, "x.other.example"), 1);
}

/// A build that panics leaves the previous snapshot serving, reports the error to the push
/// that waited for it and in the view, and the next event builds again (the change kept).
#[test]
fn a_failed_build_is_contained() {
    let mut s = state();
    let before = s.handle().load().generation;
    s.fail_next_build = true;
    let (e, mut rx) = push("late.gslb.example.org", "192.0.2.5");
    s.apply(vec![e], None);
    assert_eq!(s.handle().load().generation, before, "nothing published");
    let err = rx.try_recv().unwrap().unwrap_err().to_string();
    assert!(err.contains("injected build failure"), "{err}");
    let view = s.view();
    assert_eq!(view.build_failures, 1);
    let apex = crate::dns::name::Name::parse("gslb.example.org.", None).unwrap();
    assert!(view.zone(&apex).unwrap().build_error.as_deref().unwrap().contains("injected"));
    assert_eq!(answers(&s, "late.gslb.example.org"), 0);

    s.apply(vec![Event::HealthChanged], None);
    assert_eq!(s.handle().load().generation, before + 1);
    assert_eq!(answers(&s, "late.gslb.example.org"), 1, "the kept change is published");
    assert!(s.view().zone(&apex).unwrap().build_error.is_none());
}

/// An atomic push with a bad item is answered at once and changes nothing.
#[test]
fn rejected_atomic_pushes_change_nothing() {
    let mut s = state();
    let before = s.handle().load().generation;
    let (reply, mut rx) = oneshot::channel();
    let body = NotifyJson {
        records: vec![RecordJson {
            name: "bad.gslb.example.org".into(),
            rtype: "A".into(),
            ttl: 0,
            ips: vec!["300.0.0.1".into()],
            failover: None,
            pushed: false,
        }],
        deletes: Vec::new(),
    };
    s.apply(vec![Event::Push { body: Box::new(body), atomic: true, reply }], None);
    let Err(PushFailure::Invalid(err)) = rx.try_recv().unwrap() else { panic!("not rejected") };
    assert_eq!((err.section, err.item), ("records", 0));
    assert_eq!(s.handle().load().generation, before);
}

/// The serial in a pool name's NODATA follows the zone's serial, though a push does not
/// recompile the pools' layer.
#[test]
fn pool_negative_answers_carry_the_current_serial() {
    let mut s = state();
    let handle = s.handle();
    let serial_at_end = |name: &str, qtype: u16| -> u32 {
        let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        let mut out = vec![0u8; MAX_MESSAGE];
        let o = Responder::default()
            .respond(&handle.load(), &q, &mut out, Transport::Udp, std::net::IpAddr::from([127, 0, 0, 1]))
            .unwrap();
        // The SOA is the last record: serial, refresh, retry, expire, minimum.
        u32::from_be_bytes(out[o.len - 20..o.len - 16].try_into().unwrap())
    };
    let before = serial_at_end("gslb.example.org", 6);
    let pools_layer = s.handle().load().zones[GSLB].dynamic.clone().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (e, _rx) = push("new.gslb.example.org", "192.0.2.8");
    s.apply(vec![e], None);
    let after = serial_at_end("gslb.example.org", 6);
    assert!(after > before, "a push moves the serial");
    assert!(Arc::ptr_eq(s.handle().load().zones[GSLB].dynamic.as_ref().unwrap(), &pools_layer), "layer reused");
    assert_eq!(serial_at_end("pool.gslb.example.org", 28), after, "NODATA at a pool name");
}
