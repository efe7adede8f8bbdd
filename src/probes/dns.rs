//! DNS checks: ask the probed address one question over UDP or TCP and require the
//! configured rcode and, when set, an answer record whose data (in presentation form, as
//! `dig` prints it) contains the expected text. Answers are parsed by the `domain` crate.

use std::net::{IpAddr, SocketAddr};

use domain::base::Message;
use domain::base::name::ParsedName;
use domain::rdata::AllRecordData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::{ProbeError, describe_io};
use crate::config::DnsCheck;
use crate::dns::types::{CLASS_IN, TYPE_OPT, rcode_name};

/// The UDP payload size offered in EDNS (the DNS flag day's value).
const EDNS_PAYLOAD: u16 = 1232;

/// Asks `addr` the check's question. The caller bounds it by the timeout.
pub async fn ask(addr: SocketAddr, source: Option<IpAddr>, check: &DnsCheck) -> Result<(), ProbeError> {
    let id: u16 = rand::random();
    let query = query(id, check);
    let io = |e: std::io::Error| ProbeError::Connection(describe_io(&e));
    let reply = if check.tcp {
        let mut stream = super::tcp::connect(addr, source).await.map_err(io)?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        stream.write_all(&framed).await.map_err(io)?;
        let len = stream.read_u16().await.map_err(io)? as usize;
        let mut reply = vec![0; len];
        stream.read_exact(&mut reply).await.map_err(io)?;
        reply
    } else {
        let bind = match (source, addr) {
            (Some(src), _) if src.is_ipv4() == addr.is_ipv4() => SocketAddr::new(src, 0),
            (_, SocketAddr::V4(_)) => SocketAddr::from(([0, 0, 0, 0], 0)),
            (_, SocketAddr::V6(_)) => SocketAddr::from(([0u16; 8], 0)),
        };
        let socket = tokio::net::UdpSocket::bind(bind).await.map_err(io)?;
        socket.connect(addr).await.map_err(io)?;
        socket.send(&query).await.map_err(io)?;
        let mut buf = vec![0; 65535];
        // Datagrams with another id are not the answer (a late one, or spoofed): wait on.
        loop {
            let n = socket.recv(&mut buf).await.map_err(io)?;
            if n >= 12 && buf[..2] == id.to_be_bytes() {
                break buf[..n].to_vec();
            }
        }
    };
    judge(reply, id, check)
}

/// The query: no recursion desired, EDNS with a 1232-byte payload.
fn query(id: u16, check: &DnsCheck) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    q.extend_from_slice(check.name.as_wire());
    q.extend_from_slice(&check.qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q.push(0);
    q.extend_from_slice(&TYPE_OPT.to_be_bytes());
    q.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    q
}

fn judge(reply: Vec<u8>, id: u16, check: &DnsCheck) -> Result<(), ProbeError> {
    let malformed = |what: &str| ProbeError::Connection(format!("malformed DNS answer: {what}"));
    let msg = Message::from_octets(reply).map_err(|_| malformed("short"))?;
    let header = msg.header();
    if header.id() != id || !header.qr() {
        return Err(malformed("not an answer to the query"));
    }
    let rcode = msg.opt_rcode().to_int();
    if rcode != check.rcode {
        let name = rcode_name(rcode).map_or_else(|| msg.opt_rcode().to_string(), str::to_string);
        return Err(ProbeError::DnsRcode(name));
    }
    let Some(want) = &check.answer else { return Ok(()) };
    let answers = msg.answer().map_err(|_| malformed("answer section"))?;
    for record in answers.limit_to::<AllRecordData<_, ParsedName<_>>>() {
        let record = record.map_err(|_| malformed("answer record"))?;
        if record.data().to_string().contains(want.as_str()) {
            return Ok(());
        }
    }
    Err(ProbeError::DnsAnswer(want.clone()))
}
