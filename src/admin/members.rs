//! `/members/state`: the request operators send to drain, disable or enable pool members,
//! and the JSON of the answer. The handler in `routes` checks the secret and hands the parsed
//! request to the builder, which applies it (`health::member_state`).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::builder::MemberStatesFailure;
use crate::elchi::api::parse_absolute;
use crate::health::member_state::{AdminState, Changed, MemberStates, Selector, Wanted};

/// The body of `POST /members/state`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    /// The pool's name (absolute, trailing dot optional).
    pool: Option<String>,
    /// The member's name.
    member: Option<String>,
    /// Labels the members must carry.
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// `drain`, `disable` or `enable`.
    state: String,
}

/// Reads a request body: which members, and what they become.
pub fn parse(bytes: &[u8]) -> Result<(Selector, Wanted), ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let body: Body = serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let wanted = Wanted::parse(body.state.trim())
        .ok_or_else(|| bad(format!("state {:?}: expected drain, disable or enable", body.state)))?;
    let pool = match body.pool.as_deref() {
        None => None,
        Some(p) => Some(parse_absolute(p).ok_or_else(|| bad(format!("pool {p:?} is not a name")))?),
    };
    let selector = Selector { pool, member: body.member.map(|m| m.trim().to_string()), labels: body.labels };
    if selector.is_empty() {
        return Err(bad("give pool, member or labels: a change to every member is not taken".into()));
    }
    Ok((selector, wanted))
}

/// The answer to a change: what each selected member was and is now.
pub fn changed(changed: &[Changed]) -> Value {
    let word = |s: Option<AdminState>| s.map_or("enabled", AdminState::as_str);
    let members: Vec<Value> = changed
        .iter()
        .map(|c| {
            json!({"pool": c.key.pool.to_dotless(), "member": c.key.member, "from": word(c.before), "to": word(c.now)})
        })
        .collect();
    json!({"status": "ok", "members": members})
}

/// Every member an operator set, for `GET /members/state`.
pub fn list(states: &MemberStates) -> Value {
    let members: Vec<Value> = states
        .iter()
        .map(|(k, e)| {
            json!({"pool": k.pool.to_dotless(), "member": k.member, "state": e.state.as_str(), "by": e.by, "at": e.at})
        })
        .collect();
    json!({"members": members})
}

/// A change the builder did not make, as the API answers it.
pub fn failure(e: MemberStatesFailure) -> ApiError {
    let status = match e {
        MemberStatesFailure::NoMatch => StatusCode::NOT_FOUND,
        MemberStatesFailure::Persist(_) | MemberStatesFailure::Stopped => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, e.to_string())
}
