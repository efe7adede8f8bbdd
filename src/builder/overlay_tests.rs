//! The overlay answers exactly what a full recompile answers: random pushes and deletes
//! (new names, deep names, empty non-terminals appearing and vanishing, CNAME chains, static
//! targets, wildcards) applied to two builders, one taking them into its overlay, one
//! recompiling the zone every time, and every answer compared (the SOA serial aside).

use std::path::Path;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::sync::oneshot;

use super::compile::{Scope, overlay};
use super::*;
use crate::dns::name::Name;
use crate::elchi::api::{DeleteJson, RecordJson};
use crate::health::Observations;
use crate::server::query::{MAX_MESSAGE, Responder, Transport};

const ZONE: &str = "o.example";

fn state() -> State {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[state]\ndir = \"{}\"\n[[zone]]\nname = \"{ZONE}\"\nns = [\"ns1.{ZONE}\"]\n\
         records = \"\"\"\nns1 A 192.0.2.53\n*.w A 192.0.2.99\nst A 192.0.2.10\ns CNAME t\nmx MX 10 m\n\"\"\"\n",
        dir.keep().display()
    );
    let config = crate::config::parse(Path::new("t.toml"), &text, &|_| None).unwrap();
    State::new(config, Observations::default())
}

/// Names the pushes use: plain, deep (their parents are empty non-terminals), below the
/// static wildcard, static targets (`t`, `m`), a static name.
const NAMES: &[&str] = &["a", "b", "x.y.c", "y.c", "z.x.y.c", "q.w", "t", "m", "st", "d.e.f"];

/// A small deterministic generator (no seed to chase when a run fails: the sequence is fixed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn fqdn(rel: &str) -> String {
    format!("{rel}.{ZONE}")
}

fn op(rng: &mut Lcg) -> NotifyJson {
    let name = fqdn(NAMES[rng.next(NAMES.len())]);
    let record = |rtype: &str, ips: Vec<String>, failover: Option<String>| RecordJson {
        name: name.clone(),
        rtype: rtype.into(),
        ttl: 60,
        ips,
        failover,
        pushed: false,
    };
    match rng.next(6) {
        0 | 1 => NotifyJson {
            records: vec![record("A", vec![format!("198.51.100.{}", rng.next(250) + 1)], None)],
            deletes: Vec::new(),
        },
        2 => NotifyJson {
            records: vec![record("AAAA", vec![format!("2001:db8::{}", rng.next(999) + 1)], None)],
            deletes: Vec::new(),
        },
        3 => {
            let target = fqdn(NAMES[rng.next(NAMES.len())]);
            NotifyJson { records: vec![record("A", Vec::new(), Some(target))], deletes: Vec::new() }
        }
        _ => {
            let rtype = ["A", "AAAA", "CNAME"][rng.next(3)];
            NotifyJson { records: Vec::new(), deletes: vec![DeleteJson { name: name.clone(), rtype: rtype.into() }] }
        }
    }
}

fn apply(s: &mut State, body: NotifyJson, recompile: bool) {
    if recompile {
        let apex = Name::parse(ZONE, None).unwrap();
        s.dirty.add(&apex, Scope::Data);
    }
    let (reply, mut rx) = oneshot::channel();
    s.apply(vec![Event::Push { body: Box::new(body), atomic: false, reply }], None);
    rx.try_recv().expect("answered").expect("built and accepted");
}

/// The response as text: rcode, flags and every record (the SOA without its serial).
fn answer(s: &State, name: &str, qtype: RecordType) -> String {
    let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&u16::from(qtype).to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    let mut out = vec![0u8; MAX_MESSAGE];
    let o = Responder::default()
        .respond(&s.handle().load(), &q, &mut out, Transport::Udp, std::net::IpAddr::from([127, 0, 0, 1]))
        .unwrap();
    let m = Message::from_vec(&out[..o.len]).unwrap();
    let mut text = format!("{:?} aa={}", m.metadata.response_code, m.metadata.authoritative);
    for (section, records) in [("an", &m.answers), ("ns", &m.authorities), ("ar", &m.additionals)] {
        for r in records {
            let data = if r.record_type() == RecordType::SOA { "SOA".to_string() } else { r.data.to_string() };
            text.push_str(&format!(" | {section} {} {} {} {data}", r.name, r.ttl, r.record_type()));
        }
    }
    text
}

fn all_answers(s: &State) -> Vec<String> {
    let mut names: Vec<String> = NAMES.iter().map(|n| fqdn(n)).collect();
    for extra in ["x.c", "c", "e.f", "f", "nope", "deeper.a", "s", "mx", "other.w", "w", "d.e.f.sub"] {
        names.push(fqdn(extra));
    }
    names.push(ZONE.to_string());
    let mut out = Vec::new();
    for n in &names {
        for t in [RecordType::A, RecordType::AAAA, RecordType::CNAME, RecordType::TXT, RecordType::MX] {
            out.push(format!("{n} {t}: {}", answer(s, n, t)));
        }
    }
    out
}

#[test]
fn overlay_answers_what_a_full_recompile_answers() {
    let (mut overlay, mut full) = (state(), state());
    let mut rng = Lcg(7);
    let apex = Name::parse(ZONE, None).unwrap();
    let mut overlaid = 0;
    for step in 0..300 {
        let body = op(&mut rng);
        apply(&mut overlay, body.clone(), false);
        apply(&mut full, body.clone(), true);
        let (a, b) = (all_answers(&overlay), all_answers(&full));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "step {step} after {:?} {:?}", body.records, body.deletes);
        }
        let snap = overlay.handle().load();
        overlaid += usize::from(snap.zone(&apex).unwrap().overlay.is_some());
        assert!(full.handle().load().zone(&apex).unwrap().overlay.is_none());
    }
    assert!(overlaid > 100, "most pushes went to the overlay ({overlaid})");
}

/// Pushes that change more names than the overlay holds fold it into a new base.
#[test]
fn a_full_overlay_is_folded_into_the_base() {
    let mut s = state();
    let apex = Name::parse(ZONE, None).unwrap();
    let base = Arc::clone(&s.handle().load().zone(&apex).unwrap().base);
    for i in 0..overlay::MIN_FOLD_NAMES + 10 {
        let body = NotifyJson {
            records: vec![RecordJson {
                name: fqdn(&format!("n{i}")),
                rtype: "A".into(),
                ttl: 60,
                ips: vec!["192.0.2.1".into()],
                failover: None,
                pushed: false,
            }],
            deletes: Vec::new(),
        };
        apply(&mut s, body, false);
    }
    let zone = s.handle().load().zone(&apex).unwrap().clone();
    assert!(!Arc::ptr_eq(&zone.base, &base), "a new base");
    assert!(zone.overlay.as_ref().is_none_or(|o| o.nodes.len() < 20), "a small overlay after the fold");
    assert!(answer(&s, &fqdn("n0"), RecordType::A).contains("192.0.2.1"));
    assert!(answer(&s, &fqdn(&format!("n{}", overlay::MIN_FOLD_NAMES + 9)), RecordType::A).contains("192.0.2.1"));
}

fn push_a(name: &str, ip: &str) -> NotifyJson {
    NotifyJson {
        records: vec![RecordJson {
            name: fqdn(name),
            rtype: "A".into(),
            ttl: 60,
            ips: vec![ip.into()],
            failover: None,
            pushed: false,
        }],
        deletes: Vec::new(),
    }
}

/// With fold threads, a full overlay is folded into a new base in the background while pushes
/// go on; once the fold is in, the overlay holds just the names pushed meanwhile, and every
/// answer is what a full recompile gives.
#[test]
fn a_full_overlay_is_folded_in_the_background() {
    let (mut s, mut full) = (state(), state());
    let (tx, rx) = std::sync::mpsc::channel();
    s.set_events(tx);
    let apex = Name::parse(ZONE, None).unwrap();
    let first = Arc::clone(&s.handle().load().zone(&apex).unwrap().base);
    let mut bodies: Vec<NotifyJson> =
        (0..overlay::MIN_FOLD_NAMES).map(|i| push_a(&format!("n{i}.g{}", i % 5), "192.0.2.1")).collect();
    for body in &bodies {
        apply(&mut s, body.clone(), false);
    }
    assert!(s.zones[&apex].folding.is_some(), "a fold started");
    // Pushed while the fold runs: a new name, a changed one, a deleted one.
    let meanwhile = vec![
        push_a("late.g9", "192.0.2.2"),
        push_a("n3.g3", "192.0.2.3"),
        NotifyJson { records: Vec::new(), deletes: vec![DeleteJson { name: fqdn("n7.g2"), rtype: "A".into() }] },
    ];
    for body in &meanwhile {
        apply(&mut s, body.clone(), false);
    }
    let done = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the fold reports");
    s.apply(vec![done], None);
    let zone = s.handle().load().zone(&apex).unwrap().clone();
    assert!(!Arc::ptr_eq(&zone.base, &first), "the folded base is in");
    let overlay = zone.overlay.as_ref().expect("the names pushed meanwhile");
    assert!(overlay.nodes.len() < 10, "only those, with the apex and marks: {}", overlay.nodes.len());
    bodies.extend(meanwhile);
    for body in bodies {
        apply(&mut full, body, true);
    }
    for name in ["n0.g0", "n3.g3", "n7.g2", "late.g9", "g9", "g2", "n255.g0", "nope"] {
        for t in [RecordType::A, RecordType::AAAA] {
            assert_eq!(answer(&s, &fqdn(name), t), answer(&full, &fqdn(name), t), "{name} {t}");
        }
    }
}
