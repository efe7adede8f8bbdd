"""What the bench scripts share besides the DNS client: free loopback ports, the small HTTP
servers that stand in for a controller or a probed endpoint, and readings of a process."""

import http.server
import socket
import threading


def free_port():
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client gone mid-answer (a timed-out sync, a killed instance) is expected


def serve(addr, answer):
    """An HTTP server on `addr` whose GET answers answer(path) -> (status, bytes)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            status, body = answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = _Server(addr, Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def rss_kib(pid):
    """The process's resident set, in KiB (0 when gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
