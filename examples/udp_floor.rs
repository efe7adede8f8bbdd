//! The measurement floor for the dnsperf benchmark (`bench/run.sh floor`): a UDP "server" that
//! does only the kernel work every UDP DNS server on Linux must do — `recvmmsg` a batch,
//! `sendmmsg` the answers — and next to no DNS work: every question gets one canned A or AAAA
//! record (127.0.0.1 / ::1), whatever the name. Its server CPU per query is the part of any
//! server's figure that belongs to the kernel (and, on a VM, the hypervisor).
//!
//!     cargo run --release --example udp_floor -- 127.0.0.1:5397

#[cfg(target_os = "linux")]
fn main() -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    const BATCH: usize = 32;
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:5397".into());
    let socket = std::net::UdpSocket::bind(&addr)?;
    eprintln!("udp_floor listening addr={}", socket.local_addr()?);
    let mut bufs = vec![[0u8; 512]; BATCH];
    // SAFETY: all-zero bytes are valid values of these C structs.
    let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut iov = vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; BATCH];
    // SAFETY: as above (null pointers and zero lengths until the loop fills them).
    let mut hdr: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
    loop {
        for i in 0..BATCH {
            iov[i] = libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: bufs[i].len() };
            hdr[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            hdr[i].msg_hdr.msg_iov = &mut iov[i];
            hdr[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at buffers of this frame with their true lengths.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdr.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue;
        }
        let n = n as usize;
        for i in 0..n {
            let len = (hdr[i].msg_len as usize).min(bufs[i].len());
            iov[i].iov_len = canned_answer(&mut bufs[i], len);
        }
        // SAFETY: as above; the kernel reads `iov_len` bytes of each buffer.
        unsafe { libc::sendmmsg(socket.as_raw_fd(), hdr.as_mut_ptr(), n as u32, 0) };
    }
}

/// Turns the query in `buf[..len]` into a response with one canned address record; returns
/// the response length (the query echoed with QR set when it cannot be read).
#[cfg(target_os = "linux")]
fn canned_answer(buf: &mut [u8; 512], len: usize) -> usize {
    if len < 12 {
        return len;
    }
    buf[2] |= 0x84; // QR + AA
    buf[3] = 0;
    let mut p = 12;
    while p < len && buf[p] != 0 && buf[p] < 64 {
        p += 1 + buf[p] as usize;
    }
    let end = p + 5; // root label, QTYPE, QCLASS
    if p >= len || end > len || end + 28 > buf.len() {
        return len;
    }
    let v6 = buf[p + 1] == 0 && buf[p + 2] == 28;
    let rdata: &[u8] = if v6 { &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] } else { &[127, 0, 0, 1] };
    let rtype = if v6 { 28u8 } else { 1 };
    let head = [0xc0, 12, 0, rtype, 0, 1, 0, 0, 0, 30, 0, rdata.len() as u8];
    buf[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]); // ANCOUNT 1, no authority or additional
    buf[end..end + head.len()].copy_from_slice(&head);
    let data = end + head.len();
    buf[data..data + rdata.len()].copy_from_slice(rdata);
    data + rdata.len()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("udp_floor needs Linux (recvmmsg/sendmmsg)");
}
