//! Response Rate Limiting for UDP (as BIND's and Knot's RRL): each response is accounted to
//! (client network, class): an answer to (name, type), an NXDOMAIN in a zone, or an error.
//! Each account is a token bucket holding up to `rate × window` responses, refilled by
//! `rate` per second; a response with no token left is limited: dropped, or every `slip`-th
//! one sent truncated (TC=1, no records) so a real client behind a spoofed flood retries
//! over TCP. TCP is never limited.
//!
//! The table is a fixed array of slots allocated once (four-way set-associative by a keyed
//! hash; a new account takes the set's stalest slot), shared by every UDP worker through
//! atomics: no lock and no allocation per query. Two workers updating one account at the
//! same instant may each take a token the other has not seen (a compare-and-swap retry
//! keeps the balance itself exact); a slot re-used between the key check and the update
//! mixes two accounts once. Both only shift a count by one, which rate limiting tolerates.
//! The table lives outside the snapshot, so accounts survive every swap and reload.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::dns::net::{network, within};
use crate::dns::types::{RCODE_NOERROR, RCODE_NXDOMAIN};
use crate::snapshot::RrlSettings;

/// What a response is accounted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// NOERROR: answers, NODATA and referrals, per name and type.
    Answer = 0,
    /// NXDOMAIN, per zone.
    NxDomain = 1,
    /// Every other RCODE.
    Error = 2,
}

impl Class {
    /// Every class, in metric order.
    pub const ALL: [Class; 3] = [Class::Answer, Class::NxDomain, Class::Error];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Answer => "answer",
            Class::NxDomain => "nxdomain",
            Class::Error => "error",
        }
    }
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Limited: send it truncated instead.
    Slip,
    /// Limited: send nothing.
    Drop,
    /// Limited, but `log_only`: sent in full and counted.
    Logged,
}

struct Slot {
    /// The account's key (0: never used).
    key: AtomicU64,
    /// Second of the last update (high 32 bits) and the token balance (low 32 bits).
    state: AtomicU64,
    /// Limited responses so far, for the slip pattern.
    limited: AtomicU32,
}

const WAYS: usize = 4;

/// The accounts of every client network, shared by the UDP workers.
pub struct RrlTable {
    slots: OnceLock<Box<[Slot]>>,
    hasher: foldhash::fast::RandomState,
    epoch: Instant,
}

impl Default for RrlTable {
    fn default() -> Self {
        RrlTable { slots: OnceLock::new(), hasher: foldhash::fast::RandomState::default(), epoch: Instant::now() }
    }
}

impl std::fmt::Debug for RrlTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RrlTable").field("slots", &self.slots.get().map_or(0, |s| s.len())).finish()
    }
}

impl RrlTable {
    /// Seconds since the table was made: the clock of every account (read once per batch).
    pub fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    /// Accounts a response with `rcode` to `client` asking `qname`/`qtype` in zone slot
    /// `zone` at second `now`, and says what to do with it.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        rrl: &RrlSettings,
        client: IpAddr,
        qname: &[u8],
        qtype: u16,
        rcode: u16,
        zone: u16,
        now: u32,
    ) -> (Class, Verdict) {
        let class = match rcode {
            r if r == RCODE_NOERROR as u16 => Class::Answer,
            r if r == RCODE_NXDOMAIN as u16 => Class::NxDomain,
            _ => Class::Error,
        };
        if rrl.exempt.iter().any(|(net, len)| within(client, *net, *len)) {
            return (class, Verdict::Send);
        }
        let rate = match class {
            Class::Answer => rrl.responses_per_second,
            Class::NxDomain => rrl.nxdomains_per_second,
            Class::Error => rrl.errors_per_second,
        };
        let mut h = self.hasher.build_hasher();
        h.write_u8(class as u8);
        match network(client, rrl.ipv4_prefix, rrl.ipv6_prefix) {
            IpAddr::V4(a) => h.write_u32(a.to_bits()),
            IpAddr::V6(a) => h.write_u128(a.to_bits()),
        }
        match class {
            Class::Answer => {
                h.write(qname);
                h.write_u16(qtype);
            }
            Class::NxDomain => h.write_u16(zone),
            Class::Error => {}
        }
        let key = h.finish() | 1;
        let slots = self.slots.get_or_init(|| {
            (0..rrl.table_size.next_power_of_two().max(WAYS))
                .map(|_| Slot { key: AtomicU64::new(0), state: AtomicU64::new(0), limited: AtomicU32::new(0) })
                .collect()
        });
        let slot = find(slots, key, now, rate, rrl.window);
        let capacity = i64::from(rate) * i64::from(rrl.window);
        let mut state = slot.state.load(Ordering::Relaxed);
        let limited = loop {
            let (second, balance) = ((state >> 32) as u32, state as u32 as i32);
            let refilled = (i64::from(balance) + i64::from(now.saturating_sub(second)) * i64::from(rate)).min(capacity);
            let (limited, left) = if refilled >= 1 { (false, refilled - 1) } else { (true, refilled) };
            let next = (u64::from(now) << 32) | u64::from(left as i32 as u32);
            match slot.state.compare_exchange_weak(state, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break limited,
                Err(seen) => state = seen,
            }
        };
        if !limited {
            return (class, Verdict::Send);
        }
        if rrl.log_only {
            return (class, Verdict::Logged);
        }
        let n = slot.limited.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let verdict = if rrl.slip > 0 && n.is_multiple_of(rrl.slip) { Verdict::Slip } else { Verdict::Drop };
        (class, verdict)
    }
}

/// The slot of `key` in its set, taking over the set's stalest slot (a full bucket) when the
/// key has none.
fn find(slots: &[Slot], key: u64, now: u32, rate: u32, window: u32) -> &Slot {
    let set = (key as usize & (slots.len() - 1)) & !(WAYS - 1);
    let ways = &slots[set..set + WAYS];
    if let Some(s) = ways.iter().find(|s| s.key.load(Ordering::Relaxed) == key) {
        return s;
    }
    // An unused slot first, else the one updated longest ago.
    let stalest = ways
        .iter()
        .min_by_key(|s| (s.key.load(Ordering::Relaxed) != 0, (s.state.load(Ordering::Relaxed) >> 32) as u32))
        .expect("WAYS > 0");
    let full = (rate as i64 * window as i64).min(i32::MAX as i64) as i32;
    stalest.state.store((u64::from(now) << 32) | u64::from(full as u32), Ordering::Relaxed);
    stalest.limited.store(0, Ordering::Relaxed);
    stalest.key.store(key, Ordering::Relaxed);
    stalest
}

/// Rewrites the response in `out` (of `len` bytes) into its slip: the header and question
/// only, TC set. Returns the new length.
pub fn slip(out: &mut [u8], question_end: usize) -> usize {
    let qdcount = u16::from_be_bytes([out[4], out[5]]);
    let len = if qdcount == 0 { 12 } else { question_end };
    out[2] |= 0x02;
    out[6..12].fill(0);
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate: u32, window: u32, slip: u32) -> RrlSettings {
        RrlSettings {
            responses_per_second: rate,
            nxdomains_per_second: rate,
            errors_per_second: rate,
            window,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: vec![("192.0.2.128".parse().unwrap(), 25)].into(),
            log_only: false,
            table_size: 64,
        }
    }

    /// A bucket of rate × window, refilled by rate per second; every second limited response
    /// slips with slip 2; another network, name or class has its own account; exempt
    /// networks are never limited.
    #[test]
    fn buckets_limit_and_slip() {
        let t = RrlTable::default();
        let s = settings(3, 2, 2);
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        let ask = |ip: IpAddr, name: &[u8], rcode: u16, now: u32| t.check(&s, ip, name, 1, rcode, 0, now).1;
        let got: Vec<Verdict> = (0..9).map(|_| ask(client, b"\x01a\x00", 0, 0)).collect();
        use Verdict::*;
        assert_eq!(got, [Send, Send, Send, Send, Send, Send, Drop, Slip, Drop]);
        // The same /24, another address: the same account.
        assert_eq!(ask("198.51.100.99".parse().unwrap(), b"\x01a\x00", 0, 0), Slip);
        // Another name, another network, another class: their own accounts.
        assert_eq!(ask(client, b"\x01b\x00", 0, 0), Send);
        assert_eq!(ask("198.51.101.7".parse().unwrap(), b"\x01a\x00", 0, 0), Send);
        assert_eq!(ask(client, b"\x01a\x00", 3, 0), Send);
        // One second later: three more tokens.
        let later: Vec<Verdict> = (0..4).map(|_| ask(client, b"\x01a\x00", 0, 1)).collect();
        assert_eq!(later[..3], [Send, Send, Send]);
        assert_ne!(later[3], Send);
        for _ in 0..20 {
            assert_eq!(ask("192.0.2.200".parse().unwrap(), b"\x01a\x00", 0, 0), Send, "exempt");
        }
    }

    #[test]
    fn networks_and_slips() {
        assert_eq!(
            network("2001:db8:1:2ff::1".parse().unwrap(), 24, 56),
            "2001:db8:1:200::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(network("10.1.2.3".parse().unwrap(), 32, 56), "10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(network("10.1.2.3".parse().unwrap(), 0, 56), "0.0.0.0".parse::<IpAddr>().unwrap());
        let mut out = vec![0u8; 40];
        out[5] = 1;
        out[7] = 3;
        assert_eq!(slip(&mut out, 29), 29);
        assert_eq!((out[2] & 0x02, out[7]), (0x02, 0));
    }
}
