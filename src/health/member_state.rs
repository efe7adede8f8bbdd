//! What operators set on members from the API (`POST /members/state`): drained (answered
//! only as a last resort, while no other member of its pool is up) or disabled (never
//! answered), each with who set it and when. Owned by the builder, which applies changes as
//! events, persists them in the state directory (`members.json`) and compiles answers with
//! them; `/records`, `/explain` and `/metrics` read the same value from its view. A member
//! without an entry is enabled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::{Config, PoolConfig};
use crate::dns::name::Name;

/// The file in the state directory.
pub const FILE: &str = "members.json";

/// An operator's state for a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// Answered only while no other member of its pool is up.
    Drained,
    /// Never answered.
    Disabled,
}

impl AdminState {
    /// The word the API, metrics and logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Drained => "drained",
            AdminState::Disabled => "disabled",
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// Drain.
    Drain,
    /// Disable.
    Disable,
    /// Back to normal.
    Enable,
}

impl Wanted {
    /// The request word (`drain`, `disable`, `enable`).
    pub fn parse(word: &str) -> Option<Wanted> {
        match word {
            "drain" => Some(Wanted::Drain),
            "disable" => Some(Wanted::Disable),
            "enable" => Some(Wanted::Enable),
            _ => None,
        }
    }

    fn state(self) -> Option<AdminState> {
        match self {
            Wanted::Drain => Some(AdminState::Drained),
            Wanted::Disable => Some(AdminState::Disabled),
            Wanted::Enable => None,
        }
    }
}

/// Which members a request is about: every given part must match (at least one is given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// The pool's name (absolute).
    pub pool: Option<Name>,
    /// The member's name.
    pub member: Option<String>,
    /// Labels the member must carry, each with this value.
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    /// Whether nothing narrows it (such a request is refused: it would take every member).
    pub fn is_empty(&self) -> bool {
        self.pool.is_none() && self.member.is_none() && self.labels.is_empty()
    }

    /// The members of `config` it selects, as (pool, member) keys, in config order.
    pub fn resolve(&self, config: &Config) -> Vec<MemberKey> {
        let mut out = Vec::new();
        for pool in config.zones.iter().flat_map(|z| &z.pools) {
            if self.pool.as_ref().is_some_and(|p| *p != pool.name) {
                continue;
            }
            for m in &pool.members {
                let named = self.member.as_ref().is_none_or(|id| *id == m.id);
                let labelled = self.labels.iter().all(|(k, v)| m.labels.get(k) == Some(v));
                if named && labelled {
                    out.push(MemberKey { pool: pool.name.clone(), member: m.id.clone() });
                }
            }
        }
        out
    }
}

/// One member: its pool's name and its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberKey {
    /// The pool's name.
    pub pool: Name,
    /// The member's name.
    pub member: String,
}

/// A member's state, who set it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The state.
    pub state: AdminState,
    /// Who set it (the API client's address, or the instance it came from).
    pub by: String,
    /// When, in seconds since the epoch.
    pub at: u64,
}

/// Every member's operator state (absent: enabled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberStates {
    entries: BTreeMap<MemberKey, Entry>,
}

/// One line of `members.json`.
#[derive(Serialize, Deserialize)]
struct Stored {
    pool: String,
    member: String,
    state: AdminState,
    by: String,
    at: u64,
}

/// What a change did to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The member.
    pub key: MemberKey,
    /// Its state before.
    pub before: Option<AdminState>,
    /// Its state now.
    pub now: Option<AdminState>,
}

impl MemberStates {
    /// The state of `member` of `pool` (`None`: enabled).
    pub fn of(&self, pool: &Name, member: &str) -> Option<AdminState> {
        self.entry(pool, member).map(|e| e.state)
    }

    /// The entry of `member` of `pool`.
    pub fn entry(&self, pool: &Name, member: &str) -> Option<&Entry> {
        self.entries.get(&MemberKey { pool: pool.clone(), member: member.to_string() })
    }

    /// Sets `wanted` on `keys`, by `by`; returns what each became.
    pub fn set(&mut self, keys: &[MemberKey], wanted: Wanted, by: &str) -> Vec<Changed> {
        let at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        keys.iter()
            .map(|key| {
                let before = self.entries.get(key).map(|e| e.state);
                match wanted.state() {
                    Some(state) => {
                        self.entries.insert(key.clone(), Entry { state, by: by.to_string(), at });
                    }
                    None => {
                        self.entries.remove(key);
                    }
                }
                Changed { key: key.clone(), before, now: wanted.state() }
            })
            .collect()
    }

    /// Counts of drained and disabled members of `pool`.
    pub fn counts(&self, pool: &PoolConfig) -> (usize, usize) {
        let of = |s: AdminState| pool.members.iter().filter(|m| self.of(&pool.name, &m.id) == Some(s)).count();
        (of(AdminState::Drained), of(AdminState::Disabled))
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&MemberKey, &Entry)> {
        self.entries.iter()
    }

    /// Where the states are kept.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE)
    }

    /// Reads the states kept in `dir`; none without a file.
    pub fn load(dir: &Path) -> Result<MemberStates, String> {
        let path = MemberStates::path(dir);
        let bytes = match crate::config::file::read_regular(&path, crate::config::file::MEMBER_STATES_MAX) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MemberStates::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let stored: Vec<Stored> =
            serde_json::from_slice(&bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut entries = BTreeMap::new();
        for s in stored {
            let pool = Name::parse(&s.pool, None).map_err(|e| format!("{}: pool {:?}: {e}", path.display(), s.pool))?;
            entries.insert(MemberKey { pool, member: s.member }, Entry { state: s.state, by: s.by, at: s.at });
        }
        Ok(MemberStates { entries })
    }

    /// Writes the states into `dir`, whole or not at all.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let stored: Vec<Stored> = self
            .entries
            .iter()
            .map(|(k, e)| Stored {
                pool: k.pool.to_string(),
                member: k.member.clone(),
                state: e.state,
                by: e.by.clone(),
                at: e.at,
            })
            .collect();
        let bytes = serde_json::to_vec_pretty(&stored).map_err(std::io::Error::other)?;
        crate::config::file::write_atomic(&MemberStates::path(dir), &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pool: &str, member: &str) -> MemberKey {
        MemberKey { pool: Name::parse(pool, None).unwrap(), member: member.into() }
    }

    #[test]
    fn states_are_set_cleared_and_kept_on_disk() {
        let mut s = MemberStates::default();
        let changed = s.set(&[key("app.example.org.", "a"), key("app.example.org.", "b")], Wanted::Drain, "192.0.2.1");
        assert_eq!(changed.len(), 2);
        assert_eq!(changed[0].before, None);
        s.set(&[key("app.example.org.", "b")], Wanted::Disable, "192.0.2.1");
        let pool = Name::parse("app.example.org.", None).unwrap();
        assert_eq!(s.of(&pool, "a"), Some(AdminState::Drained));
        assert_eq!(s.of(&pool, "b"), Some(AdminState::Disabled));
        assert_eq!(s.of(&pool, "c"), None);
        let dir = tempfile::tempdir().unwrap();
        s.save(dir.path()).unwrap();
        assert_eq!(MemberStates::load(dir.path()).unwrap(), s);
        let changed = s.set(&[key("app.example.org.", "a")], Wanted::Enable, "192.0.2.1");
        assert_eq!((changed[0].before, changed[0].now), (Some(AdminState::Drained), None));
        assert_eq!(s.of(&pool, "a"), None);
        std::fs::write(MemberStates::path(dir.path()), b"{not json").unwrap();
        assert!(MemberStates::load(dir.path()).unwrap_err().contains("members.json"));
    }
}
