"""5. Upload of a 50-file batch: corpus PDFs posted to gunicorn through the API (Bearer key) and
through the dashboard's upload form (session, CSRF), timed until the answer is read."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from typing import Any

from bench.harness import Bench, forget_batches
from bench.inputs import PROMPT, corpus_mix, corpus_pdfs
from bench.measurement import CpuMeter, percentile
from bench.processes import log
from bench.web import (
    Answer,
    api_key,
    fetch,
    multipart,
    running_web,
    session_cookie,
    web_description,
)


@dataclass
class UploadPath:
    name: str  # "API" / "dashboard form"
    request: str
    seconds: list[float]
    megabytes: float  # body size of one upload

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        return percentile(self.seconds, 95)


@dataclass
class UploadResult:
    files: int
    corpus_files: int
    paths: list[UploadPath]
    others_cpus: float


def _csrf(base_url: str, cookie: str) -> tuple[str, str]:
    """(csrftoken cookie, form token) from the upload page, as a browser gets them."""
    page = fetch(base_url, "/dashboard/batch-upload/", headers={"Cookie": cookie})
    if page.status != 200:
        raise RuntimeError(f"GET /dashboard/batch-upload/ answered {page.status}")
    set_cookie = page.headers.get("Set-Cookie", "")
    token_cookie = re.search(r"csrftoken=([^;]+)", set_cookie)
    form_token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    if not token_cookie or not form_token:
        raise RuntimeError("the upload page set no CSRF cookie or token")
    return token_cookie.group(1), form_token.group(1).decode()


def _upload_api(
    base_url: str, bearer: str, files: list[tuple[str, str, bytes]], name: str
) -> tuple[Answer, str, int]:
    body, content_type = multipart([("prompt", PROMPT), ("name", name)], files)
    answer = fetch(
        base_url,
        "/api/v1/batches/",
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": content_type},
        data=body,
    )
    if answer.status != 201:
        raise RuntimeError(f"API upload answered {answer.status}: {answer.body[:500]!r}")
    return answer, json.loads(answer.body)["id"], len(body)


def _upload_form(
    base_url: str, cookie: str, files: list[tuple[str, str, bytes]], name: str
) -> tuple[Answer, str, int]:
    token_cookie, token = _csrf(base_url, cookie)
    fields = [
        ("csrfmiddlewaretoken", token),
        ("name", name),
        ("prompt", PROMPT),
        ("fields", ""),
        ("description", ""),
        ("mode", "standard"),
    ]
    body, content_type = multipart(fields, files)
    answer = fetch(
        base_url,
        "/dashboard/batch-upload/",
        headers={"Cookie": f"{cookie}; csrftoken={token_cookie}", "Content-Type": content_type},
        data=body,
    )
    location = answer.headers.get("Location", "")
    if answer.status != 302 or "/dashboard/batches/" not in location:
        raise RuntimeError(f"form upload answered {answer.status}: {answer.body[:500]!r}")
    return answer, location.rstrip("/").rsplit("/", 1)[1], len(body)


def measure(bench: Bench) -> UploadResult:
    """POST /api/v1/batches/ and the dashboard's upload form, 50 corpus PDFs each time, on
    gunicorn; no cluster runs (the drains the uploads enqueue are deleted with the batches).
    The time runs from the request's first byte until the whole answer is read: the batch and
    its documents are committed by then (the API's 201 carries the batch; the form redirects)."""
    from batches.models import BatchProcess

    count, runs = bench.args.upload_files, bench.args.upload_runs
    pdfs = corpus_pdfs(bench.args.corpus)
    log(f"upload: {count} corpus PDFs per batch ({len(pdfs)} distinct files), {runs} runs a path")
    paths = [
        UploadPath("API", "`POST /api/v1/batches/` (Bearer key)", [], 0.0),
        UploadPath("dashboard form", "`POST /dashboard/batch-upload/` (session, CSRF)", [], 0.0),
    ]
    senders = {"API": _upload_api, "dashboard form": _upload_form}
    created: list[Any] = []
    try:
        with running_web(bench) as (web, base_url):
            credentials = {"API": api_key(bench), "dashboard form": session_cookie(bench)}
            with CpuMeter([web.pid]) as cpu:
                for run in range(runs + 1):  # run 0 warms each path and is not counted
                    timings = []
                    for path in paths:
                        files = [("files", name, data) for name, data in corpus_mix(pdfs, count)]
                        answer, batch_id, size = senders[path.name](
                            base_url, credentials[path.name], files, f"upload {path.name} {run}"
                        )
                        batch = BatchProcess.objects.get(pk=batch_id)
                        if batch.documents.count() != count:
                            raise RuntimeError(
                                f"{path.name} upload made {batch.documents.count()} documents"
                            )
                        created.append(batch)
                        path.megabytes = size / 2**20
                        if run:
                            path.seconds.append(answer.seconds)
                        timings.append(f"{path.name} {answer.seconds:.3f} s")
                    log(f"  run {run}{' (warm-up)' if not run else ''}: {', '.join(timings)}")
    finally:
        forget_batches(created)
    return UploadResult(count, len(pdfs), paths, cpu.others)


def report(bench: Bench, result: UploadResult) -> list[str]:
    runs = len(result.paths[0].seconds)
    lines = [
        f"### 5. Upload of a {result.files}-file batch",
        "",
        f"{result.files} PDFs cycled from the corpus's {result.corpus_files} (every one with "
        f"different bytes), posted as one multipart request to {web_description(bench)} "
        "(no cluster runs); the time runs from the request until its whole answer is read, "
        "when the batch and its documents are committed and stored (the API answers 201 with "
        "the batch, the form 302 to the batch page; the form's time leaves out the GET of the "
        f"page that gives its CSRF token). {runs} runs a path after one warm-up run; p95 is "
        "interpolated between the two slowest runs. The issue gives no number for it; it is "
        "reported as measured.",
        "",
        "| path | request | body | median | p95 | fastest | slowest |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for path in result.paths:
        lines.append(
            f"| {path.name} | {path.request} | {path.megabytes:.1f} MB | {path.median:.3f} s "
            f"| {path.p95:.3f} s | {min(path.seconds):.3f} s | {max(path.seconds):.3f} s |"
        )
    lines += ["", f"CPUs used by other processes meanwhile: {result.others_cpus:.2f}.", ""]
    return lines
