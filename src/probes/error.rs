//! Why a probe failed. Its text is the reason that logs, `/records`, `/explain` and the
//! cluster show, so each kind of check says what it saw ("status 503", "grpc NOT_SERVING",
//! "icmp timeout", "dns rcode SERVFAIL", `expect "+PONG" got "-ERR"`).

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No answer within the check's timeout.
    #[error("timeout after {}", humantime::format_duration(*.0))]
    Timeout(std::time::Duration),
    /// The connection or the exchange failed ("connection refused", a TLS error).
    #[error("{0}")]
    Connection(String),
    /// An HTTP status outside `expect_status`.
    #[error("status {0}")]
    Status(u16),
    /// The body lacks `expect_body`.
    #[error("body does not contain {0:?}")]
    Body(String),
    /// A TCP check's reply lacks `expect` (what came instead, its first bytes, printable).
    #[error("expect {want:?} got {got:?}")]
    Expect {
        /// The expected text.
        want: String,
        /// What the peer sent.
        got: String,
    },
    /// A gRPC health answer other than SERVING (`NOT_SERVING`, `SERVICE_UNKNOWN`), or a gRPC
    /// error status (`grpc NOT_FOUND: unknown service`).
    #[error("grpc {0}")]
    Grpc(String),
    /// No echo reply within the timeout, or an ICMP error.
    #[error("icmp {0}")]
    Icmp(String),
    /// A DNS answer with another rcode.
    #[error("dns rcode {0}")]
    DnsRcode(String),
    /// A DNS answer without the expected value.
    #[error("dns answer does not contain {0:?}")]
    DnsAnswer(String),
}

/// The short text of an I/O error ("connection refused" rather than the OS's sentence).
pub fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => e.to_string(),
    }
}
