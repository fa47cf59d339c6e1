#!/usr/bin/env python3
"""A static web server for registry tests: Python's http.server with the two things a real static
server (nginx, S3, GitHub Pages) has and SimpleHTTPRequestHandler lacks, ETags and byte ranges.

    static_registry_server.py DIR [--port 0] [--cut-after BYTES] [--log FILE] [--redirect PREFIX=TARGET ...]

Prints `serving DIR on http://127.0.0.1:PORT` once listening. --cut-after makes the first full GET
of each .craft file stop after BYTES bytes and close the connection (an interrupted download);
--log appends one line per request: `METHOD PATH STATUS RANGE`. --redirect answers a GET of a path
starting with PREFIX with `302 Found` to TARGET followed by the rest of the path (TARGET may be
relative, `/`, or another server's URL).
"""
import argparse
import email.utils
import http.server
import os
import signal
import sys
import threading
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    cut_after = None
    log_file = None
    redirects = []
    cut_done = set()
    lock = threading.Lock()

    def log_message(self, format, *args):  # quiet
        pass

    def record(self, status, extra=""):
        if self.log_file:
            with self.lock, open(self.log_file, "a") as log:
                log.write(f"{self.command} {self.path} {status} {self.headers.get('Range', '-')} {extra} {time.time():.3f}\n")

    def etag_of(self, stat):
        return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'

    def do_GET(self):
        for prefix, target in self.redirects:
            if self.path.startswith(prefix):
                body = b"moved\n"
                self.record(302)
                self.send_response(302)
                self.send_header("Location", target + self.path[len(prefix):])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        path = self.translate_path(self.path)
        if os.path.isdir(path) or not os.path.isfile(path):
            self.record(404)
            self.send_error(404, "not found")
            return
        stat = os.stat(path)
        etag = self.etag_of(stat)
        if self.headers.get("If-None-Match") == etag:
            self.record(304)
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        size = stat.st_size
        start, status = 0, 200
        requested = self.headers.get("Range")
        if requested and requested.startswith("bytes=") and requested.endswith("-"):
            if_range = self.headers.get("If-Range")
            if if_range is None or if_range == etag:
                start = int(requested[len("bytes="):-1])
                if start >= size:
                    self.record(416)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.end_headers()
                    return
                status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if path.endswith(".craft") else "application/json")
        self.send_header("Content-Length", str(size - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        limit = None
        with self.lock:
            if self.cut_after is not None and path.endswith(".craft") and status == 200 and path not in self.cut_done:
                self.cut_done.add(path)
                limit = self.cut_after
        self.record(status, "cut" if limit is not None else "")
        with open(path, "rb") as source:
            source.seek(start)
            sent = 0
            while True:
                chunk = source.read(1 << 16)
                if not chunk:
                    break
                if limit is not None and sent + len(chunk) > limit:
                    self.wfile.write(chunk[: limit - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)
                sent += len(chunk)


def main():
    # A launcher may have left SIGTERM ignored or blocked (both survive exec): stop on it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cut-after", type=int)
    parser.add_argument("--log")
    parser.add_argument("--redirect", action="append", default=[])
    args = parser.parse_args()
    Handler.redirects = [tuple(rule.split("=", 1)) for rule in args.redirect]
    Handler.cut_after = args.cut_after
    Handler.log_file = args.log

    def handler(*handler_args, **kwargs):
        return Handler(*handler_args, directory=args.directory, **kwargs)

    # A listen backlog like nginx's: Python's default of 5 drops the SYNs of a client fetching many
    # index files at once, which then wait out TCP's retransmission (1 s, 3 s, 7 s).
    http.server.ThreadingHTTPServer.request_queue_size = 128
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    print(f"serving {args.directory} on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
