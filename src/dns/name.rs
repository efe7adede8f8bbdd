//! Domain names in lower-cased, uncompressed wire form.
//!
//! Every name gslbd stores (zone apexes, owners, record targets) is a [`Name`]: the RFC 1035
//! label sequence with length prefixes and the terminating root label, ASCII letters folded to
//! lower case. That form is unambiguous, hashes and compares byte-wise, and is exactly what the
//! query parser produces, so a lookup needs no conversion.

use std::fmt;

/// Longest name on the wire, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A domain name in lower-cased uncompressed wire form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Box<[u8]>);

/// Why a text name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is the empty string.
    #[error("empty name")]
    Empty,
    /// A label is empty (two dots in a row, or a leading dot).
    #[error("empty label in {0:?}")]
    EmptyLabel(String),
    /// A label is longer than 63 bytes.
    #[error("label longer than 63 bytes in {0:?}")]
    LabelTooLong(String),
    /// The whole name is longer than 255 bytes in wire form.
    #[error("name longer than 255 bytes: {0:?}")]
    TooLong(String),
    /// The name holds a byte that is not allowed in a host or service name.
    #[error("invalid character {1:?} in name {0:?}")]
    BadChar(String, char),
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name(Box::new([0]))
    }

    /// Builds a name from wire bytes that are already known to be a valid, uncompressed name.
    /// The bytes are lower-cased.
    pub fn from_wire_unchecked(wire: &[u8]) -> Name {
        Name(wire.to_ascii_lowercase().into_boxed_slice())
    }

    /// Parses a text name. A name ending in `.` is absolute; any other name is relative to
    /// `origin` (when given) and `@` is the origin itself. Letters, digits, `-`, `_` and `*`
    /// are accepted in labels; the comparison is case-insensitive.
    pub fn parse(text: &str, origin: Option<&Name>) -> Result<Name, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        if text == "@" {
            return origin.cloned().ok_or(NameError::Empty);
        }
        if text == "." {
            return Ok(Name::root());
        }
        let (body, absolute) = match text.strip_suffix('.') {
            Some(body) => (body, true),
            None => (text, false),
        };
        // Exact size, so the final boxing does not reallocate.
        let tail = match (absolute, origin) {
            (false, Some(origin)) => origin.wire_len(),
            _ => 1,
        };
        let mut wire = Vec::with_capacity(body.len() + 1 + tail);
        for label in body.split('.') {
            if label.is_empty() {
                return Err(NameError::EmptyLabel(text.to_string()));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(NameError::LabelTooLong(text.to_string()));
            }
            if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*'))) {
                return Err(NameError::BadChar(text.to_string(), c));
            }
            wire.push(label.len() as u8);
            wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
        match (absolute, origin) {
            (false, Some(origin)) => wire.extend_from_slice(origin.as_wire()),
            _ => wire.push(0),
        }
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(text.to_string()));
        }
        Ok(Name(wire.into_boxed_slice()))
    }

    /// The wire bytes, root label included.
    pub fn as_wire(&self) -> &[u8] {
        &self.0
    }

    /// Length in wire form.
    pub fn wire_len(&self) -> usize {
        self.0.len()
    }

    /// True for the root name.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// The name with its first label removed, or `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            return None;
        }
        let skip = 1 + self.0[0] as usize;
        Some(Name(self.0[skip..].into()))
    }

    /// Offsets at which each suffix starts, longest first (the name itself at 0), root excluded.
    pub fn label_offsets(&self) -> impl Iterator<Item = usize> + '_ {
        label_offsets(&self.0)
    }

    /// Number of labels, root excluded.
    pub fn label_count(&self) -> usize {
        self.label_offsets().count()
    }

    /// True when `self` equals `zone` or lies below it, comparing whole labels
    /// (`evilgslb.example.org` is not below `gslb.example.org`).
    pub fn is_within(&self, zone: &Name) -> bool {
        is_within(&self.0, &zone.0)
    }

    /// True when the first label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0.len() >= 2 && self.0[0] == 1 && self.0[1] == b'*'
    }

    /// Prepends one label (used to build `*.name` and test names).
    pub fn prepend(&self, label: &[u8]) -> Option<Name> {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return None;
        }
        let mut wire = Vec::with_capacity(self.0.len() + 1 + label.len());
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(|b| b.to_ascii_lowercase()));
        wire.extend_from_slice(&self.0);
        (wire.len() <= MAX_NAME_LEN).then(|| Name(wire.into_boxed_slice()))
    }

    /// The name relative to `zone` in presentation form without a trailing dot
    /// (`@` for the apex). Falls back to the absolute form outside the zone.
    pub fn relative_to(&self, zone: &Name) -> String {
        if self == zone {
            return "@".to_string();
        }
        if self.is_within(zone) {
            let cut = self.0.len() - zone.0.len();
            let mut out = String::new();
            write_labels(&mut out, &self.0[..cut]);
            return out;
        }
        self.to_string()
    }

    /// Presentation form without the trailing dot (`gslb.example.org`); the root is `.`.
    pub fn to_dotless(&self) -> String {
        let s = self.to_string();
        if s.len() > 1 { s[..s.len() - 1].to_string() } else { s }
    }
}

/// Offsets of each label start in a wire name (root excluded), longest suffix first.
pub fn label_offsets(wire: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let len = *wire.get(pos)? as usize;
        if len == 0 {
            return None;
        }
        let here = pos;
        pos += 1 + len;
        Some(here)
    })
}

/// Label-aware suffix test on wire names.
pub fn is_within(name: &[u8], zone: &[u8]) -> bool {
    if zone.len() > name.len() {
        return false;
    }
    if zone.len() == name.len() {
        return name == zone;
    }
    let start = name.len() - zone.len();
    // The suffix must begin on a label boundary.
    label_offsets(name).any(|o| o == start) && &name[start..] == zone
}

fn write_labels(out: &mut String, wire: &[u8]) {
    let mut first = true;
    let mut pos = 0;
    while pos < wire.len() && wire[pos] != 0 {
        let len = wire[pos] as usize;
        if !first {
            out.push('.');
        }
        first = false;
        for &b in &wire[pos + 1..pos + 1 + len] {
            match b {
                b'.' | b'\\' => {
                    out.push('\\');
                    out.push(b as char);
                }
                0x21..=0x7e => out.push(b as char),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        pos += 1 + len;
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        let mut out = String::new();
        write_labels(&mut out, &self.0);
        out.push('.');
        f.write_str(&out)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_relative_and_absolute() {
        let zone = Name::parse("GSLB.example.org", None).unwrap();
        assert_eq!(zone.to_string(), "gslb.example.org.");
        let app = Name::parse("App", Some(&zone)).unwrap();
        assert_eq!(app.to_string(), "app.gslb.example.org.");
        assert_eq!(Name::parse("@", Some(&zone)).unwrap(), zone);
        assert_eq!(Name::parse("x.net.", Some(&zone)).unwrap().to_string(), "x.net.");
        assert_eq!(app.relative_to(&zone), "app");
        assert_eq!(app.parent().unwrap(), zone);
    }

    #[test]
    fn within_is_label_aware() {
        let zone = Name::parse("gslb.example.org.", None).unwrap();
        assert!(Name::parse("a.gslb.example.org.", None).unwrap().is_within(&zone));
        assert!(zone.is_within(&zone));
        assert!(!Name::parse("evilgslb.example.org.", None).unwrap().is_within(&zone));
        assert!(!Name::parse("example.org.", None).unwrap().is_within(&zone));
    }

    #[test]
    fn rejects_bad_names() {
        assert!(Name::parse("a..b", None).is_err());
        assert!(Name::parse(&"a".repeat(64), None).is_err());
        assert!(Name::parse("a b", None).is_err());
        let long = vec!["abcdefghij"; 30].join(".");
        assert!(Name::parse(&long, None).is_err());
    }
}
