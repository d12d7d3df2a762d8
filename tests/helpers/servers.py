"""Real servers on 127.0.0.1 for the shard tests and benchmark: a static HTTP server (the
standard library's, with an optional per-request delay that models a bucket's latency) and an
S3-compatible server (moto's server mode). Nothing reaches beyond this machine."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    delay_s = 0.0

    def do_GET(self) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def http_server(root: str | Path, delay_s: float = 0.0) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1; yields the base URL (no trailing slash)."""
    handler = type("Handler", (_QuietHandler,), {"delay_s": delay_s})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def s3_server(folder: str | Path, bucket: str, prefix: str) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 holding ``folder``'s files under s3://bucket/prefix/;
    yields its endpoint URL. Credentials: any (set AWS_ACCESS_KEY_ID & co. before)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                key = f"{prefix}/{path.relative_to(folder).as_posix()}"
                client.upload_file(str(path), bucket, key)
        yield endpoint
    finally:
        server.stop()
