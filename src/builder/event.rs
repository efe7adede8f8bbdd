//! The one event type producers send the builder, and the answers the requests among them
//! wait for.

use tokio::sync::oneshot;

use super::compile::fold::Folded;
use super::persist::Persisted;
use super::push::{PushError, PushOutcome};
use super::status::SyncKind;
use crate::config::Config;
use crate::dns::name::Name;
use crate::elchi::api::{NotifyJson, Payload};
use crate::externaldns::endpoint::Changes;
use crate::externaldns::store::Refusal;
use crate::health::member_state::{Changed, Selector, Wanted};

/// What producers tell the builder.
pub enum Event {
    /// A controller request started.
    SyncAttempt(Name),
    /// A controller request failed; the data in force stays.
    SyncFailed {
        /// The zone.
        zone: Name,
        /// Which request.
        kind: SyncKind,
        /// Why.
        error: String,
    },
    /// The controller answered with records that would empty or mostly empty the zone
    /// (`sources::controller::guard`); the data in force stays and the zone is degraded
    /// until a response is taken.
    SyncRefused {
        /// The zone.
        zone: Name,
        /// Which request.
        kind: SyncKind,
        /// Why.
        error: String,
    },
    /// The controller reports no change.
    SyncUnchanged(Name),
    /// The controller sent a full record set.
    SyncAccepted {
        /// The zone.
        zone: Name,
        /// The records.
        payload: Box<Payload>,
    },
    /// A `/notify` push; the reply goes out once DNS answers it.
    Push {
        /// The body.
        body: Box<NotifyJson>,
        /// All or nothing.
        atomic: bool,
        /// Where the outcome goes.
        reply: oneshot::Sender<PushReply>,
    },
    /// An observation changed (a probe's, or another instance's): verdicts may differ.
    HealthChanged,
    /// A new config (already validated); the reply goes out once it serves.
    Reload {
        /// The config.
        config: Box<Config>,
        /// Signalled when the new config serves.
        reply: oneshot::Sender<()>,
    },
    /// The state-file writer finished a write.
    Persisted(Box<Persisted>),
    /// A fold of a zone's overlay into a new base finished.
    Folded(Box<Folded>),
    /// Stop after this batch.
    Stop,
    /// Signatures are due for renewal (the builder's own timer: it wakes up when the earliest
    /// signature of a signed zone comes within its refresh time).
    Renew,
    /// An operator drains, disables or enables members (`POST /members/state`); the reply
    /// goes out once DNS answers with the change.
    MemberStates {
        /// Which members.
        selector: Selector,
        /// What they become.
        wanted: Wanted,
        /// Who asks (the client's address).
        by: String,
        /// Where the outcome goes.
        reply: oneshot::Sender<MemberStatesReply>,
    },
    /// ExternalDNS applies a plan's changes (`POST /records` on the provider's listener):
    /// all of them or none; the reply goes out once DNS answers them.
    ExternalDns {
        /// The changes.
        changes: Box<Changes>,
        /// Where the outcome goes.
        reply: oneshot::Sender<ExternalDnsReply>,
    },
}

/// The answer to ExternalDNS's changes: per zone, the owners they touched; and the
/// provider-specific properties gslbd does not read (ignored), once per endpoint.
pub type ExternalDnsReply = Result<ExternalDnsApplied, ExternalDnsFailure>;

/// ExternalDNS's changes, applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalDnsApplied {
    /// Zone and owners touched.
    pub zones: Vec<(Name, usize)>,
    /// Names of the properties ignored.
    pub unknown_properties: Vec<String>,
}

/// Why ExternalDNS's changes were not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalDnsFailure {
    /// An endpoint is invalid or outside the zones ExternalDNS may write: nothing applied.
    #[error("{}[{}]: {}", .0.section, .0.item, .0.error)]
    Invalid(Refusal),
    /// `[externaldns]` is not configured (a reload took it away).
    #[error("ExternalDNS is not configured")]
    Disabled,
    /// The endpoints could not be kept on disk: nothing applied.
    #[error("cannot keep the endpoints of {zone}: {error}; nothing was applied")]
    Persist {
        /// The zone.
        zone: Name,
        /// The I/O error.
        error: String,
    },
    /// Applied and kept, but the build failed: DNS does not answer them yet.
    #[error("{0}; the change is kept and DNS will show it after the next good build")]
    NotBuilt(BuildError),
    /// The builder is gone (shutdown).
    #[error("the builder stopped")]
    Stopped,
}

/// The answer to a member-state change: what each selected member became.
pub type MemberStatesReply = Result<Vec<Changed>, MemberStatesFailure>;

/// Why a member-state change was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberStatesFailure {
    /// The selector matches no member of the config.
    #[error("no pool member matches the selector")]
    NoMatch,
    /// The states could not be written to the state directory; nothing changed.
    #[error("cannot keep the member states: {0}")]
    Persist(String),
    /// The builder stopped.
    #[error("stopping")]
    Stopped,
}

/// The answer to a push.
pub type PushReply = Result<PushOutcome, PushFailure>;

/// Why a push was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushFailure {
    /// An item is invalid (atomic: nothing was applied).
    #[error(transparent)]
    Invalid(#[from] PushError),
    /// The journal could not take or keep it: not acknowledged.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Applied and kept, but the build failed: DNS does not answer it yet.
    #[error("{0}; the change is kept and DNS will show it after the next good build")]
    NotBuilt(BuildError),
    /// The builder is gone (shutdown).
    #[error("the builder stopped")]
    Stopped,
}

/// A push journal that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The entry could not be appended (nothing of the push was applied).
    #[error("the push journal of {zone} cannot be written: {error}; nothing was applied")]
    Write {
        /// The zone.
        zone: Name,
        /// The I/O error.
        error: String,
    },
    /// Appended, but not made durable: the batch's pushes were taken back.
    #[error("the push journal of {zone} cannot be synced: {error}; nothing was applied")]
    Sync {
        /// The zone.
        zone: Name,
        /// The I/O error.
        error: String,
    },
}

/// A build that failed (a panic caught in a compiler): the previous snapshot keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("build failed: {0}")]
pub struct BuildError(pub String);
