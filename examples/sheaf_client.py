"""Upload documents to Sheaf, wait for the batch to finish, save its results as CSV.

Standard library only (Python 3.9+):

    SHEAF_URL=http://127.0.0.1:8000 SHEAF_API_KEY=sk_sheaf_... \\
        python examples/sheaf_client.py --prompt "invoice number, date, total" \\
        --fields "invoice number, date:date, total:number" --out results.csv a.pdf b.pdf

It prints the batch id and status while it polls, and exits 0 when the CSV is written (even if
some documents failed: their rows say why), 1 on an API error (the error's code and detail).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

TERMINAL = {"completed", "completed_with_errors", "failed", "canceled"}


class ApiError(Exception):
    """An answer with an error status: Sheaf's body is {"code": ..., "detail": ...}."""

    def __init__(self, status: int, body: bytes, retry_after: str | None) -> None:
        try:
            error = json.loads(body)
        except ValueError:
            error = {"code": "http_error", "detail": body[:200].decode(errors="replace")}
        super().__init__(f"{status} {error.get('code')}: {error.get('detail')}")
        self.status = status
        self.retry_after = int(retry_after) if retry_after and retry_after.isdigit() else None


class Sheaf:
    def __init__(self, url: str, key: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"SHEAF_URL must start with http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        self.key = key

    def request(self, method: str, path: str, body: bytes | None = None, ctype: str = "") -> bytes:
        """One call; a 429 (over the plan's request rate) waits for Retry-After and tries again."""
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        if ctype:
            headers["Content-Type"] = ctype
        while True:
            # S310: the scheme is checked in __init__.
            request = Request(self.url + path, data=body, headers=headers, method=method)  # noqa: S310
            try:
                with urlopen(request, timeout=60) as response:  # noqa: S310
                    return response.read()
            except HTTPError as exc:
                error = ApiError(exc.code, exc.read(), exc.headers.get("Retry-After"))
                if exc.code != 429 or error.retry_after is None:
                    raise error from None
                time.sleep(error.retry_after)

    def create_batch(self, files: list[Path], prompt: str, fields: str = "") -> dict:
        parts = {"prompt": prompt, "fields": fields}
        body, ctype = multipart(parts, files)
        return json.loads(self.request("POST", "/api/v1/batches/", body, ctype))

    def wait(self, batch_id: str, every: float = 2.0) -> dict:
        while True:
            batch = json.loads(self.request("GET", f"/api/v1/batches/{batch_id}/"))
            counts = batch["counts"]
            print(
                f"{batch_id}: {batch['status']} ({counts['completed']} completed, "
                f"{counts['failed']} failed of {counts['total']})",
                file=sys.stderr,
            )
            if batch["status"] in TERMINAL:
                return batch
            time.sleep(every)

    def results(self, batch_id: str, fmt: str = "csv") -> bytes:
        return self.request("GET", f"/api/v1/batches/{batch_id}/results/?format={fmt}")


def multipart(parts: dict[str, str], files: list[Path]) -> tuple[bytes, str]:
    """A multipart/form-data body: each text part once, and one `files` part per file."""
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in parts.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for path in files:
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        filename = path.name.replace('"', "")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'
        )
        chunks.append(head.encode() + path.read_bytes() + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "files", nargs="+", type=Path, help="PDF, CSV, XLSX, TXT, PNG, JPEG or TIFF files"
    )
    parser.add_argument("--prompt", required=True, help="what to extract, in words")
    parser.add_argument("--fields", default="", help="name[:type], one per line or comma-separated")
    parser.add_argument("--out", type=Path, default=Path("results.csv"))
    parser.add_argument("--url", default=os.environ.get("SHEAF_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    key = os.environ.get("SHEAF_API_KEY", "")
    if not key:
        parser.error("set SHEAF_API_KEY to an API key from /settings/ (sk_sheaf_...)")

    sheaf = Sheaf(args.url, key)
    try:
        batch = sheaf.create_batch(args.files, args.prompt, args.fields)
        print(f"created batch {batch['id']}", file=sys.stderr)
        sheaf.wait(batch["id"], every=args.poll_seconds)
        args.out.write_bytes(sheaf.results(batch["id"], "csv"))
    except ApiError as exc:
        print(f"sheaf: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
