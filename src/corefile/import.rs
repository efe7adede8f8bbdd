//! `gslbd import-corefile`: the server blocks of a Corefile that use `elchi` or
//! `zoneregistry` as a gslbd TOML config. Each option maps to our key (with the Corefile line
//! in a comment); what has no equivalent becomes a `# not supported: …` comment and what is
//! invalid (an address that does not parse, say) a `# invalid: …` comment, left out of the
//! config rather than failing the whole import. `docs/migrating.md` is the human version.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Directive, ParseError, ServerBlock, Token};

/// The imported config and what the user must look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The TOML text.
    pub toml: String,
    /// Invalid items that were left out, one line each with its Corefile line.
    pub warnings: Vec<String>,
}

/// A TOML basic string (JSON string escapes are valid TOML ones).
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// A list of TOML strings.
fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "))
}

/// `host:port`, `:port` or `[v6]:port` from a Corefile address; an empty host means every
/// IPv4 address (as CoreDNS binds), `localhost` the loopback.
fn socket_addr(addr: &str) -> String {
    let addr = addr.trim_start_matches("http://").trim_start_matches("https://");
    match addr.rsplit_once(':') {
        Some(("", port)) => format!("0.0.0.0:{port}"),
        Some(("localhost", port)) => format!("127.0.0.1:{port}"),
        _ => addr.to_string(),
    }
}

/// The zone and port of a server block key (`dns://gslb.example.org:53` → zone, 53).
fn key_parts(key: &str) -> (String, u16) {
    let key = key.split_once("://").map_or(key, |(_, rest)| rest);
    match key.rsplit_once(':') {
        Some((zone, port)) if port.parse::<u16>().is_ok() => (zone.to_string(), port.parse().expect("checked")),
        _ => (key.to_string(), 53),
    }
}

/// One `[[zone]]` being written.
#[derive(Default)]
struct ZoneOut {
    name: String,
    /// Keys of the zone table itself (before any sub-table), with their comments.
    keys: Vec<String>,
    /// `[zone.controller]` lines.
    controller: Vec<String>,
    /// `[[zone.pool]]` text.
    pools: String,
}

/// The admin listener: its address, where it came from, and its secret.
struct AdminOut {
    listen: String,
    from: String,
    secret: String,
    notes: Vec<String>,
}

#[derive(Default)]
struct Importer {
    listen: Vec<(String, String)>,
    admin: Option<AdminOut>,
    /// Endpoints served on the admin listener that had their own address in the Corefile.
    endpoints: Vec<String>,
    zones: Vec<ZoneOut>,
    notes: Vec<String>,
    warnings: Vec<String>,
}

impl Importer {
    fn not_supported(&mut self, d: &Directive, why: &str) -> String {
        format!("# not supported: {} (line {}): {why}", words(d), d.name.line)
    }

    fn invalid(&mut self, line: usize, what: &str) -> String {
        self.warnings.push(format!("Corefile line {line}: {what}"));
        format!("# invalid: {what} (Corefile line {line}); left out")
    }

    fn add_listen(&mut self, addr: String, from: String) {
        if !self.listen.iter().any(|(a, _)| *a == addr) {
            self.listen.push((addr, from));
        }
    }

    fn block(&mut self, b: &ServerBlock) {
        let uses = |name: &str| b.directives.iter().any(|d| d.name.text == name);
        let keys: Vec<&str> = b.keys.iter().map(|k| k.text.as_str()).collect();
        let line = b.keys.first().map_or(0, |k| k.line);
        if !uses("elchi") && !uses("zoneregistry") {
            let plugins: Vec<&str> = b.directives.iter().map(|d| d.name.text.as_str()).collect();
            self.notes.push(format!(
                "# server block {} (line {line}) skipped: it uses neither elchi nor zoneregistry ({}); gslbd is an authoritative server only",
                keys.join(" "),
                plugins.join(", ")
            ));
            return;
        }
        let (first_zone, port) = key_parts(keys.first().copied().unwrap_or("."));
        let binds: Vec<&Token> = b.directives.iter().filter(|d| d.name.text == "bind").flat_map(|d| &d.args).collect();
        if binds.is_empty() {
            self.add_listen(format!("0.0.0.0:{port}"), format!("{} (line {line}): every IPv4 address", keys.join(" ")));
        }
        for a in binds {
            let addr = if a.text.contains(':') && !a.text.starts_with('[') && !a.text.starts_with('{') {
                format!("[{}]:{port}", a.text)
            } else {
                format!("{}:{port}", a.text)
            };
            self.add_listen(addr, format!("bind {} (line {})", a.text, a.line));
        }
        let mut zone_lines: Vec<String> = Vec::new();
        let mut file: Option<&Directive> = None;
        let mut elchi: Option<&Directive> = None;
        let mut endpoints = Vec::new();
        for d in &b.directives {
            match d.name.text.as_str() {
                "elchi" => elchi = Some(d),
                "zoneregistry" | "bind" => {}
                "file" => file = Some(d),
                "ready" | "health" | "prometheus" => endpoints.push(d),
                // CoreDNS's log writes a text line per query; gslbd logs every query and
                // response as dnstap to a receiver instead, which needs its address.
                "log" => zone_lines.push(format!(
                    "# log (line {}): gslbd logs every query and response with a top-level [log] table, dnstap = \"unix:PATH\" or \"tcp:HOST:PORT\" (Frame Streams to a dnstap receiver such as fstrm_capture; README \"dnstap query logging\"); events go to stderr",
                    d.name.line
                )),
                "errors" => zone_lines.push(format!("# errors (line {}): gslbd logs errors to stderr", d.name.line)),
                _ => {
                    let c = self.not_supported(d, "no gslbd equivalent");
                    zone_lines.push(c);
                }
            }
        }
        if let Some(e) = elchi {
            let fallthrough = e.block.iter().any(|d| d.name.text == "fallthrough");
            for k in keys.iter().skip(1) {
                zone_lines.push(format!("# also a key of this block: {k} (elchi serves only the first key's zone)"));
            }
            self.elchi(e, &first_zone, file, fallthrough, zone_lines);
        }
        for d in b.directives.iter().filter(|d| d.name.text == "zoneregistry") {
            self.zoneregistry(d, &keys);
        }
        // After elchi: its webhook, when there is one, is the admin listener they join.
        for d in endpoints {
            self.admin_endpoint(d);
        }
    }

    fn admin_endpoint(&mut self, d: &Directive) {
        let (path, default) = match d.name.text.as_str() {
            "ready" => ("/ready", ":8181"),
            "health" => ("/health", ":8080"),
            _ => ("/metrics", "localhost:9153"),
        };
        let addr = d.args.first().map_or(default, |a| a.text.as_str());
        self.endpoints
            .push(format!("# {} {addr} (line {}) → GET {path} on the admin listener", d.name.text, d.name.line));
        if self.admin.is_none() {
            self.admin = Some(AdminOut {
                listen: socket_addr(addr),
                from: format!("{} {addr} (line {})", d.name.text, d.name.line),
                secret: "{$GSLBD_ADMIN_SECRET}".into(),
                notes: vec!["# the Corefile has no elchi webhook secret: /notify and /records need this one".into()],
            });
        }
    }

    fn elchi(&mut self, e: &Directive, zone: &str, file: Option<&Directive>, fallthrough: bool, mut keys: Vec<String>) {
        let mut out = ZoneOut { name: zone.trim_end_matches('.').to_string(), ..Default::default() };
        let (mut endpoint, mut secret) = (None, None);
        let mut controller = Vec::new();
        for d in &e.block {
            let arg = d.args.first().map(|a| a.text.as_str());
            let line = d.name.line;
            match (d.name.text.as_str(), arg) {
                ("endpoint", Some(v)) => endpoint = Some((v.to_string(), line)),
                ("secret", Some(v)) => secret = Some(v.to_string()),
                ("node_ip", Some(v)) => controller.push(format!("node_ip = {}  # line {line}", q(v))),
                ("ttl", Some(v)) => match v.parse::<u32>() {
                    Ok(n) if n > 0 => keys.push(format!("default_ttl = {n}  # elchi ttl (line {line})")),
                    _ => {
                        let c = self.invalid(line, &format!("ttl {v:?} is not a TTL above 0"));
                        keys.push(c);
                    }
                },
                ("sync_interval", Some(v)) => controller.push(format!("sync_interval = {}  # line {line}", q(v))),
                ("timeout", Some(v)) => controller.push(format!("timeout = {}  # line {line}", q(v))),
                ("regions", Some(_)) => {
                    let r: Vec<String> = d.args.iter().map(|a| a.text.clone()).collect();
                    controller.push(format!("regions = {}  # line {line}", list(&r)));
                }
                ("tls_skip_verify", None) => controller.push(format!("tls_skip_verify = true  # line {line}")),
                ("webhook", _) => {
                    let addr = socket_addr(arg.unwrap_or(":8053"));
                    match &mut self.admin {
                        Some(a) if a.from.starts_with("elchi") => a.notes.push(format!(
                            "# elchi webhook {} (line {line}) is served here too (one admin listener)",
                            arg.unwrap_or(":8053")
                        )),
                        _ => {
                            let old = self.admin.take();
                            let mut notes =
                                vec!["# the elchi webhook secret: /notify and /records check it as before".to_string()];
                            if let Some(old) = old {
                                notes.push(format!("# {} is served here too", old.from));
                            }
                            self.admin = Some(AdminOut {
                                listen: addr,
                                from: format!("elchi webhook {} (line {line})", arg.unwrap_or(":8053")),
                                secret: String::new(),
                                notes,
                            });
                        }
                    }
                }
                ("fallthrough", _) => {}
                (name, None)
                    if matches!(
                        name,
                        "endpoint" | "secret" | "node_ip" | "ttl" | "sync_interval" | "timeout" | "regions"
                    ) =>
                {
                    let c = self.invalid(line, &format!("elchi {name} has no value"));
                    controller.push(c);
                }
                _ => {
                    let c = self.not_supported(d, "not an elchi option");
                    controller.push(c);
                }
            }
        }
        if let Some(a) = &mut self.admin
            && a.secret.is_empty()
        {
            a.secret = secret.clone().unwrap_or_else(|| "{$GSLBD_ADMIN_SECRET}".into());
        }
        keys.push(if fallthrough {
            "static_records = \"fallback\"  # elchi fallthrough: controller/webhook data win, the zone file fills the names they lack".into()
        } else if file.is_some() {
            "static_records = \"fallback\"  # without fallthrough elchi answered NXDOMAIN for A/AAAA names it lacked even when the file had them; gslbd answers them from the file".into()
        } else {
            "static_records = \"fallback\"".into()
        });
        match file {
            Some(f) => match f.args.first() {
                Some(path) => {
                    keys.push(format!(
                        "zone_file = {}  # file (line {}); relative paths are relative to this config",
                        q(&path.text),
                        f.name.line
                    ));
                    keys.push("# the apex NS and SOA come from the zone file".into());
                    if !f.block.is_empty() {
                        let c = self.not_supported(f, "file options (reload: gslbd re-reads the zone file on SIGHUP)");
                        keys.push(c);
                    }
                }
                None => {
                    let c = self.invalid(f.name.line, "file has no path");
                    keys.push(c);
                }
            },
            None => keys.push(format!(
                "ns = [{}]  # not in the Corefile: the names this zone is delegated to",
                q(&format!("ns1.{}.", out.name))
            )),
        }
        match (endpoint, secret) {
            (Some((endpoint, line)), Some(secret)) => {
                out.controller.push(format!("endpoint = {}  # line {line}", q(&endpoint)));
                out.controller.push(format!("secret = {}", q(&secret)));
                out.controller.extend(controller);
            }
            (endpoint, secret) => {
                let missing = if endpoint.is_none() { "endpoint" } else { "secret" };
                let _ = secret;
                let c = self.invalid(e.name.line, &format!("elchi has no {missing}, so the zone has no controller"));
                keys.push(c);
            }
        }
        out.keys = keys;
        self.push_zone(out);
    }

    fn zoneregistry(&mut self, d: &Directive, keys: &[&str]) {
        let zones: Vec<String> = if d.args.is_empty() {
            keys.iter().map(|k| key_parts(k).0).collect()
        } else {
            d.args.iter().map(|a| a.text.clone()).collect()
        };
        let (mut ttl, mut interval, mut timeout) = (300u32, 60u64, 5u64);
        let mut notes = Vec::new();
        let mut peers = Vec::new();
        for o in &d.block {
            let line = o.name.line;
            let arg = o.args.first().map(|a| a.text.as_str());
            let number = |max: u64| arg.and_then(|v| v.parse::<u64>().ok()).filter(|n| *n <= max);
            match o.name.text.as_str() {
                "ttl" => match number(3600) {
                    Some(n) => ttl = n as u32,
                    None => notes.push(self.invalid(line, &format!("ttl {arg:?} is not 0..3600"))),
                },
                "interval" => match number(300).filter(|n| *n > 0) {
                    Some(n) => interval = n,
                    None => notes.push(self.invalid(line, &format!("interval {arg:?} is not 1..300 seconds"))),
                },
                "timeout" => match number(30) {
                    Some(n) => timeout = n,
                    None => notes.push(self.invalid(line, &format!("timeout {arg:?} is not 0..30 seconds"))),
                },
                "peer" => peers.push(o),
                "fallthrough" => notes.push(self.not_supported(o, "zoneregistry ignored it too")),
                _ => notes.push(self.not_supported(o, "not a zoneregistry option")),
            }
        }
        // Upstream cut every probe at 500 ms whatever `timeout` said; ours must be below the interval.
        let timeout_ms = (timeout * 1000).clamp(100, interval * 1000 - 1);
        let mut members = String::new();
        let mut count = 0;
        for p in peers {
            let Some(host) = p.args.first() else {
                notes.push(self.invalid(p.name.line, "peer has no host name"));
                continue;
            };
            let host_name = format!("{}.", host.text.trim_end_matches('.'));
            let (mut role, mut protocol, mut path, mut port) =
                ("primary".to_string(), "http".to_string(), "/health".to_string(), 8080u32);
            let (mut v4, mut v6, mut labels) = (Vec::new(), Vec::new(), BTreeMap::new());
            let mut member_notes = Vec::new();
            for o in &p.block {
                let line = o.name.line;
                let arg = o.args.first().map(|a| a.text.clone()).unwrap_or_default();
                // Upstream reads these names in lower case only; its README writes IPv4/IPv6.
                match o.name.text.to_ascii_lowercase().as_str() {
                    "role" if matches!(arg.as_str(), "primary" | "secondary") => role = arg,
                    "protocol" if matches!(arg.as_str(), "http" | "https") => protocol = arg,
                    "path" if arg.starts_with('/') => path = arg,
                    "port" if arg.parse::<u16>().is_ok() => port = arg.parse().expect("checked"),
                    "ipv4" => match arg.parse::<std::net::Ipv4Addr>() {
                        Ok(ip) => v4.push(ip.to_string()),
                        Err(_) => member_notes.push(
                            self.invalid(line, &format!("ipv4 {arg:?} of peer {} is not an IPv4 address", host.text)),
                        ),
                    },
                    "ipv6" => match arg.parse::<std::net::Ipv6Addr>() {
                        Ok(ip) => v6.push(ip.to_string()),
                        Err(_) => member_notes.push(
                            self.invalid(line, &format!("ipv6 {arg:?} of peer {} is not an IPv6 address", host.text)),
                        ),
                    },
                    "labels" => {
                        for l in &o.args {
                            let (k, v) = l.text.split_once('=').unwrap_or((&l.text, ""));
                            labels.insert(k.to_string(), v.to_string());
                        }
                    }
                    "role" | "protocol" | "path" | "port" => {
                        member_notes.push(self.invalid(line, &format!("{} {arg:?} of peer {}", o.name.text, host.text)))
                    }
                    _ => member_notes.push(self.not_supported(o, "not a peer option")),
                }
            }
            if v4.is_empty() && v6.is_empty() {
                notes.push(self.invalid(p.name.line, &format!("peer {} has no valid address", host.text)));
                continue;
            }
            count += 1;
            let _ = writeln!(members, "\n[[zone.pool.member]]  # peer {} (line {})", host.text, p.name.line);
            for n in member_notes {
                let _ = writeln!(members, "{n}");
            }
            let _ = writeln!(members, "name = {}", q(&host_name));
            let _ = writeln!(members, "role = {}", q(&role));
            if !labels.is_empty() {
                let l: Vec<String> = labels.iter().map(|(k, v)| format!("{} = {}", q(k), q(v))).collect();
                let _ = writeln!(members, "labels = {{ {} }}", l.join(", "));
            }
            if !v4.is_empty() {
                let _ = writeln!(members, "ipv4 = {}", list(&v4));
            }
            if !v6.is_empty() {
                let _ = writeln!(members, "ipv6 = {}", list(&v6));
            }
            let _ = writeln!(
                members,
                "[zone.pool.member.check]\ntype = {}\nport = {port}\npath = {}",
                q(&protocol),
                q(&path)
            );
        }
        for zone in zones {
            let name = zone.trim_end_matches('.').to_string();
            let mut pool = String::new();
            let _ = writeln!(pool, "\n[[zone.pool]]  # zoneregistry (line {})", d.name.line);
            for n in &notes {
                let _ = writeln!(pool, "{n}");
            }
            pool.push_str("name = \"*\"  # every name below the zone is referred to the healthy peers\n");
            pool.push_str("mode = \"delegate\"  # NS and glue, as zoneregistry (with the queried name as NS owner)\n");
            let _ = writeln!(pool, "ttl = {ttl}");
            pool.push_str("select = \"failover\"  # healthy primaries, else healthy secondaries\n");
            pool.push_str("when_all_down = \"all\"  # then every peer, as zoneregistry\n");
            let _ = writeln!(pool, "max_answers = {}", count.max(1));
            let _ = writeln!(
                pool,
                "[zone.pool.check]\ninterval = \"{interval}s\"\ntimeout = \"{timeout_ms}ms\"  # zoneregistry timeout {timeout}; it cut every probe at 500 ms\nexpect_status = [200]\nrise = 1  # zoneregistry flipped on every result\nfall = 1"
            );
            pool.push_str(&members);
            let out = ZoneOut {
                name: name.clone(),
                keys: vec![format!(
                    "ns = [{}]  # not in the Corefile: the names this zone is delegated to",
                    q(&format!("ns1.{name}."))
                )],
                controller: Vec::new(),
                pools: pool,
            };
            self.push_zone(out);
        }
    }

    fn push_zone(&mut self, out: ZoneOut) {
        match self.zones.iter_mut().find(|z| z.name.eq_ignore_ascii_case(&out.name)) {
            // Two blocks for one zone (elchi in one, zoneregistry in another): one zone.
            Some(z) => {
                z.keys.extend(out.keys.into_iter().filter(|k| !k.starts_with("ns = ")));
                z.controller.extend(out.controller);
                z.pools.push_str(&out.pools);
            }
            None => self.zones.push(out),
        }
    }

    fn finish(self) -> Imported {
        let mut t = String::new();
        t.push_str(concat!(
            "# gslbd config imported from a Corefile by gslbd ",
            env!("CARGO_PKG_VERSION"),
            " import-corefile.\n"
        ));
        t.push_str(
            "# Review every \"# not supported\" and \"# invalid\" line; docs/migrating.md explains the differences.\n",
        );
        for n in &self.notes {
            let _ = writeln!(t, "{n}");
        }
        t.push_str("\n[server]\n");
        let listen: Vec<String> = self.listen.iter().map(|(a, _)| a.clone()).collect();
        let _ = writeln!(t, "listen = {}", list(&listen));
        for (a, from) in &self.listen {
            let _ = writeln!(t, "# {a}: {from}");
        }
        t.push_str("\n[state]\ndir = \"./state\"  # last-known-good controller data (upstream kept none)\n");
        if let Some(a) = &self.admin {
            let _ = writeln!(t, "\n[admin]  # from {}", a.from);
            let _ = writeln!(t, "listen = {}", q(&a.listen));
            let _ = writeln!(t, "secret = {}", q(&a.secret));
            for n in a.notes.iter().chain(&self.endpoints) {
                let _ = writeln!(t, "{n}");
            }
        }
        for z in &self.zones {
            let _ = writeln!(t, "\n[[zone]]\nname = {}", q(&z.name));
            for k in &z.keys {
                let _ = writeln!(t, "{k}");
            }
            if !z.controller.is_empty() {
                t.push_str("[zone.controller]\n");
                for c in &z.controller {
                    let _ = writeln!(t, "{c}");
                }
            }
            t.push_str(&z.pools);
        }
        Imported { toml: t, warnings: self.warnings }
    }
}

/// A directive as written, for comments.
fn words(d: &Directive) -> String {
    std::iter::once(&d.name).chain(&d.args).map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// Imports a Corefile.
pub fn import(text: &str) -> Result<Imported, ParseError> {
    let blocks = super::parse(text)?;
    let mut im = Importer::default();
    for b in &blocks {
        im.block(b);
    }
    if im.zones.is_empty() {
        return Err(ParseError { line: 1, message: "no server block uses elchi or zoneregistry".into() });
    }
    Ok(im.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_addresses() {
        assert_eq!(key_parts("gslb.example.org:53"), ("gslb.example.org".into(), 53));
        assert_eq!(key_parts("dns://example.org:1053"), ("example.org".into(), 1053));
        assert_eq!(key_parts("."), (".".into(), 53));
        assert_eq!(socket_addr(":8053"), "0.0.0.0:8053");
        assert_eq!(socket_addr("localhost:9253"), "127.0.0.1:9253");
        assert_eq!(socket_addr("10.0.0.1:8181"), "10.0.0.1:8181");
    }
}
