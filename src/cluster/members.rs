//! Operators' member states (`POST /members/state`) shared by every instance (`[cluster]`):
//! a change made on one instance is written to a second bucket, `<bucket>-members`, and every
//! other instance applies it as if it had been asked itself (through its builder, which keeps
//! it in its own state directory). One key per member (`m.<hash of pool/member>`), so the
//! last change wins; the bucket keeps values until they are replaced (an `enable` is a value
//! too), and a new or returning instance takes every value at connection. Values are sealed
//! like observations (`[cluster] key`, `members`), but do not age.
//!
//! Its own task and connection, beside the observation exchange: a drain is rare and must not
//! wait behind observation traffic, nor the observations behind it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::gate::Gate;
use super::nats;
use crate::config::cluster::ClusterConfig;
use crate::dns::name::Name;
use crate::health::member_state::{AdminState, Selector, Wanted};

/// A change made here, to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The pool's name.
    pub pool: Name,
    /// The member's name.
    pub member: String,
    /// Its state (`None`: enabled).
    pub state: Option<AdminState>,
    /// Who asked here.
    pub by: String,
}

/// Changes waiting to be written; each new task (a reload starts one) takes over the
/// receiving end.
pub type Outbox = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Share>>>;

/// The sending end (for the admin API) and the outbox.
pub fn channel() -> (mpsc::UnboundedSender<Share>, Outbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, Arc::new(tokio::sync::Mutex::new(rx)))
}

/// Applies a change another instance made, as this instance's own: the member, its state and
/// who made it.
pub type Apply = Arc<dyn Fn(Selector, Wanted, String) + Send + Sync>;

/// One member's state as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    pool: String,
    member: String,
    /// `drained`, `disabled` or `enabled`.
    state: String,
    by: String,
    instance: String,
}

/// The bucket's key for a member: stable on every instance, and only characters a key may
/// hold.
fn key(pool: &Name, member: &str) -> String {
    let h = crate::stable_hash::fnv1a(format!("{pool}/{member}").into_bytes());
    format!("m.{h:016x}")
}

/// Starts sharing until `stop`: writes what arrives in `outbox`, applies what others wrote.
pub fn start(config: ClusterConfig, outbox: Outbox, apply: Apply, stop: CancellationToken) {
    tokio::spawn(async move {
        let gate = Gate::new(&config, Duration::ZERO);
        let mut outbox = outbox.lock().await;
        let mut backoff = Duration::from_millis(200);
        loop {
            match session(&config, &gate, &mut outbox, &apply, &stop).await {
                Ok(()) => return,
                Err(e) => tracing::debug!(error = %e, "cluster: member states not shared until NATS is back"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
}

/// One connection: takes every stored state, then writes and takes changes until it fails.
async fn session(
    config: &ClusterConfig,
    gate: &Gate,
    outbox: &mut mpsc::UnboundedReceiver<Share>,
    apply: &Apply,
    stop: &CancellationToken,
) -> Result<(), String> {
    let (client, mut events) = nats::connect(config, "-members").await.map_err(|e| e.to_string())?;
    let js = async_nats::jetstream::new(client);
    let bucket = format!("{}-members", config.bucket);
    let store = match js.get_key_value(&bucket).await {
        Ok(store) => store,
        Err(_) => js
            .create_key_value(kv::Config { bucket: bucket.clone(), history: 1, ..Default::default() })
            .await
            .map_err(|e| format!("creating the bucket {bucket}: {e}"))?,
    };
    // Changes made while NATS was away go first: the stored states read next must not
    // undo them here.
    while let Ok(change) = outbox.try_recv() {
        write(config, gate, &store, &change).await?;
    }
    let mut watch = store.watch_with_history(">").await.map_err(|e| format!("watching {bucket}: {e}"))?;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            event = events.recv() => match event {
                Some(async_nats::Event::Disconnected) | None => return Err("the connection to NATS was lost".into()),
                Some(_) => {}
            },
            change = outbox.recv() => {
                let Some(change) = change else { return Ok(()) };
                write(config, gate, &store, &change).await?;
            }
            entry = watch.next() => {
                let entry = match entry {
                    Some(Ok(e)) => e,
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("the watch ended".into()),
                };
                if entry.operation != kv::Operation::Put {
                    continue;
                }
                take(config, gate, &entry.key, &entry.value, apply);
            }
        }
    }
}

/// Writes a change made here.
async fn write(config: &ClusterConfig, gate: &Gate, store: &kv::Store, change: &Share) -> Result<(), String> {
    let k = key(&change.pool, &change.member);
    let stored = Stored {
        pool: change.pool.to_string(),
        member: change.member.clone(),
        state: change.state.map_or("enabled", AdminState::as_str).to_string(),
        by: change.by.clone(),
        instance: config.instance.clone(),
    };
    let body = gate.seal(&k, serde_json::to_string(&stored).unwrap_or_default());
    store.put(k, body.into()).await.map(|_| ()).map_err(|e| {
        // Not shared: the other instances keep what they had (the operator sees it and can
        // ask again).
        tracing::warn!(pool = %change.pool, member = %change.member, error = %e, "cluster: a member state was not shared");
        e.to_string()
    })
}

/// Applies one stored state another instance wrote, when the gate lets it count.
fn take(config: &ClusterConfig, gate: &Gate, k: &str, value: &[u8], apply: &Apply) {
    // The key does not name the writer: the value does (inside the seal, with a key).
    let who = claimed_instance(value).unwrap_or_default();
    let Ok(body) = gate.open_lasting(k, &who, value) else {
        tracing::warn!(key = k, instance = who, "cluster: ignoring a member state that may not count");
        return;
    };
    let Ok(stored) = serde_json::from_slice::<Stored>(&body) else { return };
    if stored.instance != who || stored.instance == config.instance || key_of(&stored).as_deref() != Some(k) {
        return;
    }
    let wanted = match stored.state.as_str() {
        "drained" => Wanted::Drain,
        "disabled" => Wanted::Disable,
        _ => Wanted::Enable,
    };
    let Ok(pool) = Name::parse(&stored.pool, None) else { return };
    let selector = Selector { pool: Some(pool), member: Some(stored.member), labels: Default::default() };
    apply(selector, wanted, format!("{} via {}", stored.by, stored.instance));
}

/// The instance a stored value says wrote it (sealed or not).
fn claimed_instance(value: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Sealed {
        body: String,
    }
    let body = match serde_json::from_slice::<Sealed>(value) {
        Ok(sealed) => sealed.body.into_bytes(),
        Err(_) => value.to_vec(),
    };
    serde_json::from_slice::<Stored>(&body).ok().map(|s| s.instance)
}

/// The key a stored value belongs under (a value copied to another member's key is refused).
fn key_of(stored: &Stored) -> Option<String> {
    Some(key(&Name::parse(&stored.pool, None).ok()?, &stored.member))
}
