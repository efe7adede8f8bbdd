//! The ExternalDNS contract: the webhook provider protocol's JSON (`endpoint`), an endpoint
//! checked and turned into records (`convert`), and each zone's endpoints as ExternalDNS
//! wrote them, kept in a file of their own (`store`). The listener that speaks the protocol
//! is a producer (`sources::externaldns`); the builder owns the endpoints.

pub mod convert;
pub mod endpoint;
pub mod store;

/// The media type ExternalDNS's webhook client sends and expects (`Accept`, `Content-Type`).
pub const MEDIA_TYPE: &str = "application/external.dns.webhook+json;version=1";
