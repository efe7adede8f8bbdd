//! Batched UDP receive and send with `recvmmsg`/`sendmmsg` (Linux): one system call moves
//! up to [`BATCH`] datagrams each way, which is where most of the CPU per query goes on a
//! busy server. All buffers and headers are allocated once per worker; the unsafe code is
//! limited to filling the kernel's header arrays and the two calls.

use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest query read (larger ones are truncated by the kernel and answered FORMERR).
pub const REQ_LEN: usize = 4096;
/// Room for one UDP response: at most the 4,096-byte EDNS payload we allow, plus slack.
pub const RESP_LEN: usize = 4096 + 512;

/// Per-worker buffers for one batch.
pub struct Batch {
    req: Vec<[u8; REQ_LEN]>,
    resp: Vec<[u8; RESP_LEN]>,
    addrs: Vec<libc::sockaddr_storage>,
    recv_iov: Vec<libc::iovec>,
    recv_hdr: Vec<libc::mmsghdr>,
    send_iov: Vec<libc::iovec>,
    send_hdr: Vec<libc::mmsghdr>,
    /// Received datagram lengths and their peer address lengths.
    got: Vec<(usize, libc::socklen_t)>,
}

impl Default for Batch {
    fn default() -> Self {
        // SAFETY: these are plain C structs for which all-zero bytes are a valid value.
        let zeroed_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zeroed_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        let iov = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        Batch {
            req: vec![[0; REQ_LEN]; BATCH],
            resp: vec![[0; RESP_LEN]; BATCH],
            addrs: vec![zeroed_addr; BATCH],
            recv_iov: vec![iov; BATCH],
            recv_hdr: vec![zeroed_hdr; BATCH],
            send_iov: vec![iov; BATCH],
            send_hdr: vec![zeroed_hdr; BATCH],
            got: vec![(0, 0); BATCH],
        }
    }
}

impl Batch {
    /// Waits for at least one datagram (up to the socket's receive timeout) and takes up to
    /// [`BATCH`] that are ready. Returns how many arrived.
    pub fn receive(&mut self, socket: &impl AsRawFd) -> std::io::Result<usize> {
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
        // SAFETY: every header points at buffers owned by `self` that outlive the call, with
        // their true lengths; the kernel writes at most those lengths.
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
        let n = n as usize;
        for i in 0..n {
            self.got[i] = ((self.recv_hdr[i].msg_len as usize).min(REQ_LEN), self.recv_hdr[i].msg_hdr.msg_namelen);
        }
        Ok(n)
    }

    /// The `i`-th received query and a response buffer for it.
    pub fn pair(&mut self, i: usize) -> (&[u8], &mut [u8]) {
        (&self.req[i][..self.got[i].0], &mut self.resp[i][..])
    }

    /// Queues the response of query `i` (its first `len` bytes) as the `slot`-th datagram.
    pub fn queue(&mut self, slot: usize, i: usize, len: usize) {
        self.send_iov[slot] = libc::iovec { iov_base: self.resp[i].as_mut_ptr().cast(), iov_len: len };
        let h = &mut self.send_hdr[slot].msg_hdr;
        h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = self.got[i].1;
        h.msg_iov = &mut self.send_iov[slot];
        h.msg_iovlen = 1;
        h.msg_control = std::ptr::null_mut();
        h.msg_controllen = 0;
        h.msg_flags = 0;
    }

    /// Sends the first `count` queued datagrams; returns how many the kernel took.
    pub fn send(&mut self, socket: &impl AsRawFd, count: usize) -> usize {
        let mut sent = 0;
        while sent < count {
            // SAFETY: the headers from `sent` on were filled by `queue` and point at buffers
            // owned by `self`.
            let r = unsafe {
                libc::sendmmsg(socket.as_raw_fd(), self.send_hdr[sent..].as_mut_ptr(), (count - sent) as u32, 0)
            };
            if r <= 0 {
                // A datagram the kernel refuses (e.g. an unreachable peer) is skipped.
                sent += 1;
                continue;
            }
            sent += r as usize;
        }
        sent
    }
}
