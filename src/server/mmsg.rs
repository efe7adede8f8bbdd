//! Batched UDP receive and send with `recvmmsg`/`sendmmsg` (Linux): one system call moves
//! up to [`BATCH`] datagrams each way, which is where most of the CPU per query goes on a
//! busy server. All buffers and headers are allocated once per worker; the unsafe code is
//! limited to the two calls and reading the peer address the kernel wrote.
//!
//! The invariants the kernel relies on hold by construction:
//! * every array has exactly [`BATCH`] entries (fixed-size arrays), so a header index is in
//!   bounds and a call never names more headers than exist;
//! * the arrays live in one heap allocation ([`Batch::new`] returns a `Box`) that is never
//!   resized or moved, so the pointers the headers hold stay valid between the call that
//!   fills them and the system call that uses them;
//! * each header's lengths are the true lengths of the buffer it points at;
//! * [`Batch::send`] only sends headers [`Batch::queue`] filled since the last receive, in
//!   order (checked), so it never hands the kernel a stale or unfilled header.

use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest query read (larger ones are truncated by the kernel and answered FORMERR).
pub const REQ_LEN: usize = 4096;
/// Room for one UDP response: at most the 4,096-byte EDNS payload we allow, plus slack.
pub const RESP_LEN: usize = 4096 + 512;

/// Per-worker buffers and kernel headers for one batch.
pub struct Batch {
    req: [[u8; REQ_LEN]; BATCH],
    resp: [[u8; RESP_LEN]; BATCH],
    addrs: [libc::sockaddr_storage; BATCH],
    recv_iov: [libc::iovec; BATCH],
    recv_hdr: [libc::mmsghdr; BATCH],
    send_iov: [libc::iovec; BATCH],
    send_hdr: [libc::mmsghdr; BATCH],
    /// Received datagram lengths and their peer address lengths.
    got: [(usize, libc::socklen_t); BATCH],
    /// Datagrams received by the last [`Batch::receive`].
    received: usize,
    /// Send headers filled since that receive.
    queued: usize,
}

/// What [`Batch::send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams the kernel took.
    pub sent: usize,
    /// Datagrams it refused (skipped; e.g. an unreachable peer).
    pub failed: usize,
}

impl Batch {
    /// Buffers for one worker, on the heap where they stay (the headers point into them).
    pub fn new() -> Box<Batch> {
        let layout = std::alloc::Layout::new::<Batch>();
        // SAFETY: the layout is Batch's own (non-zero size); the allocation is checked for
        // null; every field is an integer, an array of integers, or a plain C struct
        // (sockaddr_storage, iovec, mmsghdr) for which all-zero bytes are a valid value (null
        // pointers, zero lengths), so the zeroed memory is a valid Batch that the Box owns.
        unsafe {
            let p = std::alloc::alloc_zeroed(layout).cast::<Batch>();
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Box::from_raw(p)
        }
    }

    /// Waits for at least one datagram (up to the socket's receive timeout) and takes up to
    /// [`BATCH`] that are ready. Returns how many arrived.
    pub fn receive(&mut self, socket: &impl AsRawFd) -> std::io::Result<usize> {
        self.received = 0;
        self.queued = 0;
        for i in 0..BATCH {
            self.recv_iov[i] = libc::iovec { iov_base: self.req[i].as_mut_ptr().cast(), iov_len: REQ_LEN };
            let h = &mut self.recv_hdr[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.recv_iov[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.recv_hdr[i].msg_len = 0;
        }
        // SAFETY: `recv_hdr` has BATCH entries, each pointing (just above) at an iovec and an
        // address buffer in this same allocation with their true lengths; the kernel writes
        // at most those lengths, and nothing moves before the call returns.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.recv_hdr.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = (n as usize).min(BATCH);
        for i in 0..n {
            self.got[i] = ((self.recv_hdr[i].msg_len as usize).min(REQ_LEN), self.recv_hdr[i].msg_hdr.msg_namelen);
        }
        self.received = n;
        Ok(n)
    }

    /// The `i`-th received query and a response buffer for it.
    pub fn pair(&mut self, i: usize) -> (&[u8], &mut [u8]) {
        assert!(i < self.received, "query {i} was not received in this batch");
        (&self.req[i][..self.got[i].0], &mut self.resp[i][..])
    }

    /// The sender of query `i` (unspecified if the kernel gave no IP address).
    #[inline]
    pub fn peer(&self, i: usize) -> std::net::SocketAddr {
        let a = &self.addrs[i];
        match a.ss_family as i32 {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in here (its family says so);
                // sockaddr_storage is larger than sockaddr_in and aligned for it.
                let sin = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                (sin.sin_addr.s_addr.to_ne_bytes(), u16::from_be(sin.sin_port)).into()
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                (sin6.sin6_addr.s6_addr, u16::from_be(sin6.sin6_port)).into()
            }
            _ => ([0u8; 4], 0).into(),
        }
    }

    /// Queues the response of query `i` (its first `len` bytes) as the next datagram to send.
    pub fn queue(&mut self, i: usize, len: usize) {
        assert!(i < self.received && len <= RESP_LEN && self.queued < BATCH, "queue({i}, {len}) out of bounds");
        let slot = self.queued;
        self.send_iov[slot] = libc::iovec { iov_base: self.resp[i].as_mut_ptr().cast(), iov_len: len };
        let h = &mut self.send_hdr[slot].msg_hdr;
        h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = self.got[i].1;
        h.msg_iov = &mut self.send_iov[slot];
        h.msg_iovlen = 1;
        h.msg_control = std::ptr::null_mut();
        h.msg_controllen = 0;
        h.msg_flags = 0;
        self.queued += 1;
    }

    /// Sends every datagram queued since the last receive.
    pub fn send(&mut self, socket: &impl AsRawFd) -> Sent {
        let count = self.queued;
        let mut out = Sent { sent: 0, failed: 0 };
        let mut at = 0;
        while at < count {
            // SAFETY: headers `at..count` were filled by `queue` since the last receive and
            // point at response and address buffers in this allocation with their true
            // lengths; `count <= BATCH`, so the call names only existing headers.
            let r = unsafe {
                libc::sendmmsg(socket.as_raw_fd(), self.send_hdr[at..count].as_mut_ptr(), (count - at) as u32, 0)
            };
            if r <= 0 {
                // The kernel refused the datagram at `at`: skip it and send the rest.
                out.failed += 1;
                at += 1;
                continue;
            }
            out.sent += r as usize;
            at += r as usize;
        }
        self.queued = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    /// Three datagrams in, their echoes (reversed) out, to the right peers; queueing past
    /// what was received is refused.
    #[test]
    fn a_batch_round_trip_on_loopback() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let clients: Vec<UdpSocket> = (0..3).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        for (i, c) in clients.iter().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.send_to(&[i as u8, 1, 2], server.local_addr().unwrap()).unwrap();
        }
        let mut batch = Batch::new();
        let mut got = 0;
        // The three may arrive over more than one call.
        while got < 3 {
            let n = batch.receive(&server).unwrap();
            for i in 0..n {
                let (req, out) = batch.pair(i);
                let len = req.len();
                for (j, b) in req.iter().rev().enumerate() {
                    out[j] = *b;
                }
                batch.queue(i, len);
            }
            assert_eq!(batch.send(&server), Sent { sent: n, failed: 0 });
            got += n;
        }
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 16];
            let (n, _) = c.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[2, 1, i as u8]);
        }
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch.queue(BATCH, 1))).is_err());
    }
}
