//! Integration tests: the real `gslbd` binary on 127.0.0.1 with an ephemeral port, real
//! UDP and TCP packets, hickory-proto as the independent client codec.

mod admin_client;
mod fake_controller;
mod harness;

/// The admin HTTP API.
mod admin_api;
/// Health-check kinds: gRPC, DNS, ICMP, HTTP headers at another address.
mod checks;
/// Health verdicts shared through NATS JetStream.
mod cluster;
/// Configuration error reporting.
mod config_errors;
/// Elchi controller sync.
mod controller_sync;
/// DNS Cookies (RFC 7873, RFC 9018).
mod cookies;
/// `gslbd import-corefile` on the upstream README examples.
mod corefile_import;
/// Answers to queries for existing data.
mod dns_answers;
/// NXDOMAIN, NODATA and REFUSED.
mod dns_negative;
/// Opcodes, malformed input, classes, EDNS, truncation.
mod dns_protocol;
/// TCP transport behaviour.
mod dns_tcp;
/// DNSSEC online signing, validated by unbound and dnspython.
mod dnssec;
/// dnstap query logging to a Frame Streams receiver.
mod dnstap;
/// DNS over TLS.
mod dot;
/// Draining and disabling members from the API.
mod drain;
/// EDNS Client Subnet.
mod ecs;
/// The event log (`GET /events`).
mod events;
/// The ExternalDNS webhook provider.
mod externaldns;
/// Regressions of the fault battery.
mod faults;
/// Topology steering: location maps, geo pools and names, ECS scope.
mod geo;
/// Consistent hashing of client networks.
mod hashing;
/// HTTPS/SVCB records whose hints follow the pools' answers.
mod https;
/// Signals, reload, check, CLI.
mod lifecycle;
/// Drop-in compatibility with the upstream plugins, and fault-battery fixes.
mod migration;
/// The shipped alert rules and dashboard against a real /metrics.
mod monitoring;
/// Property tests of the query parser and responder.
mod parser_props;
/// Health-checked pools.
mod pools;
/// Response rate limiting over UDP.
mod rrl;
/// Zone transfers out, with Knot DNS as the secondary.
mod transfer;
/// The status page in headless Chromium.
mod ui;
