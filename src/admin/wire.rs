//! JSON for the errors hyper answers itself. A request hyper cannot parse (a space in the
//! URI, a bare CR, a URI or head too large) never reaches the routes: hyper answers it with
//! a 4xx and an empty body and closes. The API promises a JSON body for every error, so the
//! connection's writes pass through [`JsonErrors`], which gives exactly those responses
//! (a 4xx with `content-length: 0`, which no route answers) an `{"error": "..."}` body.
//! Everything else passes through untouched.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose empty 4xx responses get a JSON body.
pub struct JsonErrors<T> {
    inner: T,
    /// A rewritten response still to be written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<T> JsonErrors<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> JsonErrors<T> {
        JsonErrors { inner, pending: Vec::new(), written: 0 }
    }
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    /// Writes what is pending; ready once it all is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

/// hyper's own error response in `buf` with a JSON body, or `None` for anything else.
fn with_json_body(buf: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(buf).ok()?;
    if !head.starts_with("HTTP/1.1 4") || !head.ends_with("\r\n\r\n") {
        return None;
    }
    let empty = "\r\ncontent-length: 0\r\n";
    let at = head.find(empty)?;
    let message = match head.get(9..12)? {
        "400" => "malformed request (request line or headers)",
        "414" => "URI too long",
        "431" => "request head too large",
        "408" => "request head timed out",
        _ => "bad request",
    };
    let body = serde_json::json!({ "error": message }).to_string();
    let mut out = String::with_capacity(head.len() + body.len() + 48);
    out.push_str(&head[..at]);
    out.push_str(&format!("\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len()));
    out.push_str(&head[at + empty.len()..]);
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(rewritten) = with_json_body(buf) {
            // Taken whole; written out by this call or the next write, flush or shutdown.
            self.pending = rewritten;
            if let Poll::Ready(Err(e)) = self.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes each response as one buffer, which is what
    // `with_json_body` looks at.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_4xx_responses_get_a_body() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(with_json_body(hyper).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/json"), "{out}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{out}");
        assert!(head.contains("connection: close") && head.ends_with("date: x"), "{out}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("malformed"));
        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 21\r\n\r\n{\"error\":\"not found\"}";
        assert!(with_json_body(ours).is_none());
        assert!(with_json_body(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
