//! The guard between a controller response and the zone: a response that parses but would
//! empty or mostly empty the zone is far more often a controller fault (every record
//! invalid, a filter gone wrong) than a wish, and taking it would turn every name into
//! NXDOMAIN. A genuinely empty record set is taken (as documented); a response whose every
//! record was skipped, or that would remove more than `max_shrink` of the zone's records,
//! is refused and the data in force keeps serving.

use crate::elchi::api::{self, Payload};

/// `max_shrink` counts only when a response removes at least this many records: in a small
/// zone a few records are a large share, and losing them is an edit, not an accident.
pub const MIN_GUARDED_REMOVAL: usize = 10;

/// Whether `payload` may replace the zone's `current` controller records; the reason when not.
pub fn check(payload: &Payload, current: usize, max_shrink: u8) -> Result<(), String> {
    if payload.received == 0 {
        return Ok(());
    }
    let usable = api::rr_count(&payload.converted.nodes);
    if usable == 0 {
        let first = payload.converted.reasons.first().map_or(String::new(), |r| format!(", first: {r}"));
        return Err(format!("every one of the {} records in the response was skipped{first}", payload.received));
    }
    let removed = current.saturating_sub(usable);
    if removed >= MIN_GUARDED_REMOVAL && removed * 100 > current * max_shrink as usize {
        return Err(format!(
            "the response would remove {removed} of the zone's {current} records, more than max_shrink {max_shrink}%"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::name::Name;
    use crate::elchi::api::RecordJson;

    fn payload(records: &[(&str, &[&str])]) -> Payload {
        let apex = Name::parse("gslb.example.org.", None).unwrap();
        let list: Vec<RecordJson> = records
            .iter()
            .map(|(name, ips)| RecordJson {
                name: name.to_string(),
                rtype: "A".into(),
                ttl: 30,
                ips: ips.iter().map(|s| s.to_string()).collect(),
                failover: None,
                pushed: false,
            })
            .collect();
        Payload {
            zone: "gslb.example.org".into(),
            version_hash: "v".into(),
            received: list.len(),
            converted: api::convert(&list, &apex, 300),
        }
    }

    #[test]
    fn empty_sets_pass_broken_and_shrinking_ones_do_not() {
        assert_eq!(check(&payload(&[]), 100, 50), Ok(()), "a genuinely empty set is taken");
        let broken = payload(&[("a.other.example", &["192.0.2.1"]), ("b.gslb.example.org", &[])]);
        let why = check(&broken, 100, 50).unwrap_err();
        assert!(why.contains("every one of the 2 records"), "{why}");
        assert!(check(&broken, 0, 100).is_err(), "even into an empty zone, even without a shrink limit");
        let one = payload(&[("a.gslb.example.org", &["192.0.2.1"])]);
        let names: Vec<String> = (0..10).map(|i| format!("n{i}.gslb.example.org")).collect();
        let ten: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), &["192.0.2.1"][..])).collect();
        assert_eq!(check(&payload(&ten), 20, 50), Ok(()), "half may go");
        assert!(check(&payload(&ten), 21, 50).is_err(), "more than half may not");
        let why = check(&one, 30, 50).unwrap_err();
        assert!(why.contains("remove 29 of the zone's 30 records"), "{why}");
        assert_eq!(check(&one, 10, 50), Ok(()), "fewer than 10 removed: an edit");
        assert_eq!(check(&one, 30, 100), Ok(()), "100%: no limit");
        assert_eq!(check(&one, 0, 50), Ok(()), "a zone with nothing yet takes anything usable");
    }
}
