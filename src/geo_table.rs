//! Where a client is: a location map's rules compiled into sorted interval tables, one per
//! address family, that give the client's datacenter order and the ECS scope of that answer
//! in one binary search. A leaf: the config reads a MaxMind DB into one, the snapshot asks it
//! per query.
//!
//! A map's rules (a network and the datacenters to try, nearest first) may nest; the most
//! specific one wins and addresses no rule covers get the map's default. Compiling flattens
//! the rules into disjoint intervals and merges neighbours with the same order, so an
//! interval is the widest range of addresses that get the same answer. The ECS scope of an
//! answer (RFC 7871 §7.2.1) is then the widest prefix around the client that stays inside
//! its interval: wider would claim addresses that get another answer, narrower would
//! fragment resolver caches for nothing (the scope gdnsd gives; PowerDNS's echo of the
//! source prefix is the bug users report).

use std::net::IpAddr;

/// A datacenter order's index in a map's orders.
pub type OrderId = u16;

/// An order id meaning "no rule here": in a table that lies under a map's own networks (a
/// database's), such addresses get the map's default.
pub const NO_ORDER: OrderId = OrderId::MAX;

/// One rule: a network and the order its clients get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The network's first address (IPv4 as the low 32 bits with `v4`).
    pub start: u128,
    /// Prefix length.
    pub prefix: u8,
    /// IPv4 (32-bit addresses) or IPv6.
    pub v4: bool,
    /// The order its clients get.
    pub order: OrderId,
}

/// A map compiled for the query path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoTable {
    /// Interval starts and their orders, sorted; an interval runs to the next start.
    v4: Vec<(u32, OrderId)>,
    /// The same for IPv6.
    v6: Vec<(u128, OrderId)>,
}

/// A lookup's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// The client's datacenter order.
    pub order: OrderId,
    /// The ECS scope prefix of answers that depend only on that order.
    pub scope: u8,
}

/// Address width in bits.
fn bits(v4: bool) -> u32 {
    if v4 { 32 } else { 128 }
}

/// The last address of `start/prefix`.
fn last_of(start: u128, prefix: u8, v4: bool) -> u128 {
    let host = bits(v4) - prefix as u32;
    if host == 0 { start } else { start | (u128::MAX >> (128 - host)) }
}

impl GeoTable {
    /// Compiles `rules` (validated: prefixes within the family's width, host bits zero) with
    /// `default` for every address no rule covers.
    pub fn build(rules: &[Rule], default: OrderId) -> GeoTable {
        GeoTable {
            v4: flatten(rules.iter().filter(|r| r.v4), true, default).into_iter().map(|(s, o)| (s as u32, o)).collect(),
            v6: flatten(rules.iter().filter(|r| !r.v4), false, default),
        }
    }

    /// The order and scope for `addr` (an IPv4-mapped IPv6 address counts as IPv4).
    #[inline]
    pub fn locate(&self, addr: IpAddr) -> Located {
        match addr {
            IpAddr::V4(a) => locate_in(&self.v4, u32::from(a), 32),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => locate_in(&self.v4, u32::from(v4), 32),
                None => locate_in(&self.v6, u128::from(a), 128),
            },
        }
    }

    /// A table from disjoint ranges `(first, last, order)` per family, in any order (a
    /// database's networks); addresses no range covers get [`NO_ORDER`]. Overlapping ranges
    /// keep the first.
    pub fn from_ranges(v4: &mut [(u32, u32, OrderId)], v6: &mut [(u128, u128, OrderId)]) -> GeoTable {
        let mut wide: Vec<(u128, u128, OrderId)> = v4.iter().map(|&(a, b, o)| (a as u128, b as u128, o)).collect();
        GeoTable {
            v4: from_ranges(&mut wide, true).into_iter().map(|(s, o)| (s as u32, o)).collect(),
            v6: from_ranges(v6, false),
        }
    }

    /// The same intervals with every order id but [`NO_ORDER`] mapped through `f`.
    pub fn remap(&self, f: impl Fn(OrderId) -> OrderId) -> GeoTable {
        let m = |o: OrderId| if o == NO_ORDER { o } else { f(o) };
        GeoTable {
            v4: self.v4.iter().map(|&(s, o)| (s, m(o))).collect(),
            v6: self.v6.iter().map(|&(s, o)| (s, m(o))).collect(),
        }
    }

    /// `rules` laid over `base`: a rule's order wherever a rule covers the address (most
    /// specific first, as [`GeoTable::build`]), else the base's, else `default`.
    pub fn layered(rules: &[Rule], base: &GeoTable, default: OrderId) -> GeoTable {
        let wide_base: Vec<(u128, OrderId)> = base.v4.iter().map(|&(s, o)| (s as u128, o)).collect();
        let v4 = overlay(&flatten(rules.iter().filter(|r| r.v4), true, NO_ORDER), &wide_base, default);
        GeoTable {
            v4: v4.into_iter().map(|(s, o)| (s as u32, o)).collect(),
            v6: overlay(&flatten(rules.iter().filter(|r| !r.v4), false, NO_ORDER), &base.v6, default),
        }
    }

    /// Intervals held (IPv4, IPv6), for memory accounting and tests.
    pub fn intervals(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }
}

/// Disjoint intervals covering the whole family, most specific rule winning, neighbours
/// with the same order merged.
fn flatten<'r>(rules: impl Iterator<Item = &'r Rule>, v4: bool, default: OrderId) -> Vec<(u128, OrderId)> {
    let mut sorted: Vec<&Rule> = rules.collect();
    // Wider first at the same start, so a nested rule comes after the one it refines; with
    // two rules for the same network the later one wins.
    sorted.sort_by_key(|r| (r.start, r.prefix));
    let max = last_of(0, 0, v4);
    let mut out: Vec<(u128, OrderId)> = vec![(0, default)];
    // Rules whose networks contain the current position: (last address, order).
    let mut open: Vec<(u128, OrderId)> = Vec::new();
    let push = |out: &mut Vec<(u128, OrderId)>, start: u128, order: OrderId| match out.last_mut() {
        Some(last) if last.0 == start => last.1 = order,
        _ => out.push((start, order)),
    };
    for r in sorted {
        let last = last_of(r.start, r.prefix, v4);
        // Close the rules that end before this one starts; where one ends, the one around it
        // (or the default) takes over.
        while let Some(&(end, _)) = open.last() {
            if end >= r.start {
                break;
            }
            open.pop();
            if end < max {
                push(&mut out, end + 1, open.last().map_or(default, |o| o.1));
            }
        }
        push(&mut out, r.start, r.order);
        open.push((last, r.order));
    }
    while let Some((end, _)) = open.pop() {
        if end < max {
            push(&mut out, end + 1, open.last().map_or(default, |o| o.1));
        }
    }
    out.dedup_by(|next, prev| next.1 == prev.1);
    out
}

/// Intervals from disjoint ranges (see [`GeoTable::from_ranges`]).
fn from_ranges(ranges: &mut [(u128, u128, OrderId)], v4: bool) -> Vec<(u128, OrderId)> {
    ranges.sort_unstable_by_key(|r| r.0);
    let max = last_of(0, 0, v4);
    let mut out: Vec<(u128, OrderId)> = vec![(0, NO_ORDER)];
    let push = |out: &mut Vec<(u128, OrderId)>, start: u128, order: OrderId| match out.last_mut() {
        Some(last) if last.0 == start => last.1 = order,
        _ => out.push((start, order)),
    };
    // The first address no range has covered yet; `None` once the family is covered.
    let mut next = Some(0u128);
    for &(first, last, order) in ranges.iter() {
        let Some(n) = next else { break };
        if first < n || last > max || last < first {
            continue;
        }
        if first > n {
            push(&mut out, n, NO_ORDER);
        }
        push(&mut out, first, order);
        next = (last < max).then(|| last + 1);
    }
    if let Some(n) = next {
        push(&mut out, n, NO_ORDER);
    }
    out.dedup_by(|next, prev| next.1 == prev.1);
    out
}

/// Two interval lists (each covering the family from 0) combined: `top`'s order where it has
/// one, else `base`'s, else `default`.
fn overlay(top: &[(u128, OrderId)], base: &[(u128, OrderId)], default: OrderId) -> Vec<(u128, OrderId)> {
    let mut out: Vec<(u128, OrderId)> = Vec::with_capacity(top.len() + base.len());
    let (mut i, mut j) = (0, 0);
    while i < top.len() && j < base.len() {
        let start = top[i].0.max(base[j].0);
        let order = [top[i].1, base[j].1].into_iter().find(|&o| o != NO_ORDER).unwrap_or(default);
        if out.last().is_none_or(|&(_, o)| o != order) {
            out.push((start, order));
        }
        match (top.get(i + 1).map(|t| t.0), base.get(j + 1).map(|b| b.0)) {
            (None, None) => break,
            (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
            (Some(a), Some(b)) if a < b => i += 1,
            (Some(_), None) => i += 1,
            _ => j += 1,
        }
    }
    out
}

#[inline]
fn locate_in<T: Copy + Into<u128>>(table: &[(T, OrderId)], addr: T, width: u32) -> Located {
    let a: u128 = addr.into();
    // The interval holding `a`: the last start at or below it (the first starts at 0).
    let i = table.partition_point(|&(s, _)| s.into() <= a).saturating_sub(1);
    let Some(&(start, order)) = table.get(i) else { return Located { order: 0, scope: 0 } };
    let lo: u128 = start.into();
    let hi: Option<u128> = table.get(i + 1).map(|&(s, _)| s.into() - 1);
    Located { order, scope: scope(a, lo, hi, width) }
}

/// The widest prefix around `a` whose network lies within `lo..=hi` (`hi` `None`: the end of
/// the family). A network around `a` stays at or above `lo` when it does not reach `lo - 1`,
/// that is when its prefix covers the first bit where `a` and `lo - 1` differ; the same for
/// `hi + 1` at the top.
fn scope(a: u128, lo: u128, hi: Option<u128>, width: u32) -> u8 {
    let shift = 128 - width;
    let need = |other: u128| ((a ^ other) << shift).leading_zeros() + 1;
    let below = if lo == 0 { 0 } else { need(lo - 1) };
    let above = hi.map_or(0, |h| need(h + 1));
    below.max(above).min(width) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(net: &str, order: OrderId) -> Rule {
        let (addr, prefix) = net.split_once('/').unwrap();
        let a: std::net::Ipv4Addr = addr.parse().unwrap();
        Rule { start: u32::from(a) as u128, prefix: prefix.parse().unwrap(), v4: true, order }
    }

    fn v6(net: &str, order: OrderId) -> Rule {
        let (addr, prefix) = net.split_once('/').unwrap();
        let a: std::net::Ipv6Addr = addr.parse().unwrap();
        Rule { start: u128::from(a), prefix: prefix.parse().unwrap(), v4: false, order }
    }

    fn at(t: &GeoTable, addr: &str) -> (OrderId, u8) {
        let l = t.locate(addr.parse().unwrap());
        (l.order, l.scope)
    }

    /// A database's ranges with gaps lie under the map's own networks: a network wins
    /// wherever it applies (even over a narrower database range), the database elsewhere,
    /// the default in the gaps.
    #[test]
    fn rules_lie_over_a_database_table() {
        let ip = |a: &str| u32::from(a.parse::<std::net::Ipv4Addr>().unwrap());
        let mut ranges4 = [
            (ip("10.0.0.0"), ip("10.0.255.255"), 5),
            (ip("10.1.0.0"), ip("10.1.0.255"), 6),
            (ip("10.1.1.0"), ip("10.1.255.255"), 5),
            (ip("255.255.255.0"), ip("255.255.255.255"), 7),
        ];
        let mut ranges6 = [(u128::from("2001:db8::".parse::<std::net::Ipv6Addr>().unwrap()), u128::MAX >> 1, 8)];
        let base = GeoTable::from_ranges(&mut ranges4, &mut ranges6).remap(|o| o * 10);
        assert_eq!(at(&base, "10.1.0.7"), (60, 24));
        assert_eq!(at(&base, "9.0.0.1").0, NO_ORDER);
        assert_eq!(at(&base, "255.255.255.9"), (70, 24), "a range up to the last address");
        let t = GeoTable::layered(&[v4("10.1.0.0/16", 1), v4("192.0.2.0/24", 2)], &base, 0);
        assert_eq!(at(&t, "10.0.9.9"), (50, 16));
        assert_eq!(at(&t, "10.1.0.7"), (1, 16), "the map's /16 wins over the database's /24");
        assert_eq!(at(&t, "192.0.2.1"), (2, 24));
        assert_eq!(at(&t, "9.0.0.1"), (0, 7), "a gap gets the default");
        assert_eq!(at(&t, "2001:db8::1").0, 80);
        assert_eq!(at(&t, "::1").0, 0);
    }

    #[test]
    fn the_most_specific_rule_wins_and_the_default_covers_the_rest() {
        let t = GeoTable::build(&[v4("10.0.0.0/8", 1), v4("10.1.0.0/16", 2), v4("10.1.2.0/24", 3)], 0);
        assert_eq!(at(&t, "10.1.2.3").0, 3);
        assert_eq!(at(&t, "10.1.3.1").0, 2);
        assert_eq!(at(&t, "10.2.0.1").0, 1);
        assert_eq!(at(&t, "11.0.0.1").0, 0);
        assert_eq!(at(&t, "9.255.255.255").0, 0);
        assert_eq!(at(&t, "::ffff:10.1.2.3").0, 3, "IPv4-mapped counts as IPv4");
        assert_eq!(at(&t, "2001:db8::1").0, 0);
    }

    #[test]
    fn the_scope_is_the_widest_network_with_the_same_answer() {
        let t = GeoTable::build(&[v4("10.0.0.0/8", 1), v4("10.1.0.0/16", 2), v4("10.1.2.0/24", 3)], 0);
        assert_eq!(at(&t, "10.1.2.3"), (3, 24));
        // 10.1.3.x: the /16 minus the /24 inside it; the widest block around .3.x that
        // avoids 10.1.2.0/24 is 10.1.3.0/24.
        assert_eq!(at(&t, "10.1.3.1"), (2, 24));
        assert_eq!(at(&t, "10.1.128.1"), (2, 17));
        assert_eq!(at(&t, "10.200.0.1"), (1, 9));
        // Outside 10/8 the default reaches from 0.0.0.0 to 9.255.255.255 and from 11.0.0.0 up.
        assert_eq!(at(&t, "200.1.1.1"), (0, 1));
        assert_eq!(at(&t, "11.0.0.1"), (0, 8));
        assert_eq!(at(&t, "1.2.3.4"), (0, 5));
    }

    #[test]
    fn neighbours_with_the_same_answer_merge_into_one_scope() {
        // Sixteen /24s with one order make a /20, as gdnsd merges them (10.189.3.0/24 → /20).
        let rules: Vec<Rule> = (0..16).map(|i| v4(&format!("10.189.{i}.0/24"), 7)).collect();
        let t = GeoTable::build(&rules, 0);
        assert_eq!(at(&t, "10.189.3.9"), (7, 20));
        assert_eq!(t.intervals().0, 3);
    }

    #[test]
    fn a_rule_repeated_takes_the_later_order_and_host_routes_work() {
        let t = GeoTable::build(&[v4("192.0.2.0/24", 1), v4("192.0.2.0/24", 2), v4("192.0.2.7/32", 3)], 0);
        assert_eq!(at(&t, "192.0.2.1").0, 2);
        assert_eq!(at(&t, "192.0.2.7"), (3, 32));
        assert_eq!(at(&t, "192.0.2.6"), (2, 32));
        assert_eq!(at(&t, "192.0.2.8"), (2, 29));
        let all = GeoTable::build(&[v4("0.0.0.0/0", 4)], 0);
        assert_eq!(at(&all, "203.0.113.1"), (4, 0));
    }

    #[test]
    fn ipv6_rules() {
        let t = GeoTable::build(&[v6("2001:db8::/32", 1), v6("2001:db8:40::/48", 2)], 0);
        assert_eq!(at(&t, "2001:db8:40::1"), (2, 48));
        assert_eq!(at(&t, "2001:db8:41::1"), (1, 48));
        assert_eq!(at(&t, "2001:db8:8000::1"), (1, 33));
        assert_eq!(at(&t, "2001:db9::1").0, 0);
        assert_eq!(at(&t, "10.0.0.1"), (0, 0), "no IPv4 rules: one interval");
    }

    /// Every address gets the order of the most specific rule covering it, and the network of
    /// its scope holds no address with another order (checked against a direct search).
    #[test]
    fn random_maps_match_a_direct_search() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..50 {
            let rules: Vec<Rule> = (0..20)
                .map(|_| {
                    let prefix = 8 + (next() % 17) as u8;
                    let start = (next() as u32 & 0x0fff_ffff | 0x0a00_0000) & (u32::MAX << (32 - prefix));
                    Rule { start: start as u128, prefix, v4: true, order: (next() % 4) as OrderId }
                })
                .collect();
            let t = GeoTable::build(&rules, 9);
            let direct = |a: u32| {
                let mut best: Option<(u8, usize)> = None;
                for (i, r) in rules.iter().enumerate() {
                    let last = last_of(r.start, r.prefix, true) as u32;
                    if (r.start as u32..=last).contains(&a) && best.is_none_or(|(p, _)| r.prefix >= p) {
                        best = Some((r.prefix, i));
                    }
                }
                best.map_or(9, |(_, i)| rules[i].order)
            };
            for _ in 0..200 {
                let a = (next() as u32 & 0x0fff_ffff) | 0x0a00_0000;
                let l = t.locate(std::net::Ipv4Addr::from(a).into());
                assert_eq!(l.order, direct(a), "{}", std::net::Ipv4Addr::from(a));
                let net = if l.scope == 0 { 0 } else { a & (u32::MAX << (32 - l.scope)) };
                let last = last_of(net as u128, l.scope, true) as u32;
                for probe in [net, last, net.wrapping_add((last - net) / 2)] {
                    assert_eq!(
                        direct(probe),
                        l.order,
                        "scope /{} of {} too wide",
                        l.scope,
                        std::net::Ipv4Addr::from(a)
                    );
                }
                // One bit narrower would not be wider than needed: the block one bit wider
                // holds another answer (unless the scope is already 0).
                if l.scope > 0 {
                    let wider = l.scope - 1;
                    let wnet = if wider == 0 { 0 } else { a & (u32::MAX << (32 - wider)) };
                    let wlast = last_of(wnet as u128, wider, true) as u32;
                    let (lo, hi) = (t.v4.partition_point(|&(s, _)| s <= a) - 1, t.v4.partition_point(|&(s, _)| s <= a));
                    let start = t.v4[lo].0;
                    let end = t.v4.get(hi).map_or(u32::MAX, |&(s, _)| s - 1);
                    assert!(wnet < start || wlast > end, "scope /{} of {} could be wider", l.scope, a);
                }
            }
        }
    }
}
