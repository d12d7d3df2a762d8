"""How shard bytes travel beyond LitData's own clients: HTTP(S) downloads (a web server, a CDN,
a presigned bucket) through LitData's ``register_downloader`` hook, and S3-compatible servers on
plain HTTP. Importing this module registers the downloader."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import requests
from litdata.streaming import downloader as litdata_downloader
from litdata.streaming.downloader import Downloader, register_downloader


class HTTPDownloader(Downloader):
    """Chunks and index files over plain HTTP(S) GETs (a web server, a CDN, a presigned bucket)."""

    def download_file(self, remote_filepath: str, local_filepath: str) -> None:
        if os.path.exists(local_filepath):
            return
        os.makedirs(os.path.dirname(local_filepath) or ".", exist_ok=True)
        tmp = self._temp_download_path(local_filepath)
        timeout = float(self._storage_options.get("timeout", 60))
        try:
            with requests.get(remote_filepath, stream=True, timeout=timeout) as response:
                if response.status_code == 404:
                    raise FileNotFoundError(f"{remote_filepath}: HTTP 404 not found")
                response.raise_for_status()
                with open(tmp, "wb") as f:
                    for block in response.iter_content(1 << 20):
                        f.write(block)
            expected = self._expected_bytes(remote_filepath)
            if expected is not None and os.path.getsize(tmp) != expected:
                # LitData would wait for the rest of a short chunk forever.
                raise OSError(
                    f"shard {remote_filepath} is truncated or replaced ({os.path.getsize(tmp):,} "
                    f"bytes, its index says {expected:,}); upload it again or rewrite the shards"
                )
            self._publish_file(tmp, local_filepath)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def _expected_bytes(self, remote_filepath: str) -> int | None:
        name = remote_filepath.rsplit("/", 1)[-1]
        sizes = [c.get("chunk_bytes") for c in self._chunks if c.get("filename") == name]
        return int(sizes[0]) if sizes and sizes[0] is not None else None

    async def adownload_file(self, remote_filepath: str, local_filepath: str) -> None:
        await asyncio.to_thread(self.download_file, remote_filepath, local_filepath)
        self._notify_published(local_filepath)


for _scheme in ("http://", "https://"):
    register_downloader(_scheme, HTTPDownloader, overwrite=True)


def allow_plain_http_endpoint(storage_options: dict[str, Any]) -> None:
    # LitData's S3 chunk reads go through obstore, which refuses an http:// endpoint unless told
    # (boto3 does not): S3-compatible servers on a private network (MinIO, moto) are often plain
    # HTTP. Only an endpoint the user configured as http:// turns this on.
    if str(storage_options.get("endpoint_url", "")).startswith("http://"):
        litdata_downloader._OBSTORE_CLIENT_OPTIONS["allow_http"] = "true"  # type: ignore[index]
