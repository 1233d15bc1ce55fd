"""9. Extraction quality: the offline engine against the development set's labels.

Every file of a development set (`samples.devset`, written here unless --devset names one) is read
with Sheaf's own reader (`documents.readers.read_document`) and extracted as the pipeline does:
an e-invoice's XML fills the fields it carries (`extraction.einvoice`), the offline engine
(`extraction.local.engine.LocalEngine`) the rest, in this process: no database, cluster or web
server. Each of the five fields is scored by `bench.scoring` (exact match after the issue's
normalisation); a document the reader or the engine refuses scores every field missing. Line
items are scored per document and per kind (`bench.scoring.score_rows`). Where this
machine has OCR, every scan is OCRed once more by Sheaf and by tesserocr side by side
(`_ocr_side_by_side`) for OCR pages/s.
"""

from __future__ import annotations

import json
import mimetypes
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Bench
from bench.processes import log
from bench.scoring import COLUMNS, Outcome, RowScore, judge, score_rows

SCORED = ("invoice number", "date", "total", "currency", "supplier")
FIELDS = "invoice number, date:date, total:number, currency, supplier"
LINE_ITEMS = (
    "line items: table(description; quantity:number; unit price:number; amount:number)"
    " -- one row per invoice line"
)
KINDS = ("born-digital", "scan", "einvoice")
# A file's type by its extension when the upload checks do not know it (yet): the reader then
# refuses it as unsupported, which is what Sheaf does with such an upload today.
_ALIASES = {"jpg": "jpeg", "jpeg": "jpg", "tif": "tiff", "tiff": "tif"}


@dataclass
class Scored:
    """One document's outcome."""

    entry: dict[str, Any]  # its labels.json entry
    values: dict[str, Any]  # field -> the engine's value (None when missing)
    statuses: dict[str, str]  # field -> the value's status (documents.models.value_status)
    outcomes: dict[str, Outcome]
    error: str | None  # the reader's or the engine's error code
    read_seconds: float
    extract_seconds: float | None  # None when the engine was not reached
    pages: int
    ocr_pages: int
    rows: RowScore | None  # None when the engine returned no rows


@dataclass
class OcrSpeed:
    """Sheaf's OCR against the raw library on the same pages (see `_ocr_side_by_side`)."""

    scans: int
    pages: int
    sheaf_seconds: float
    raw_seconds: float
    words: int  # of the born-digital twins' pages
    words_read: int  # of those, found in Sheaf's OCR text of the same page
    confidence: float | None


@dataclass
class QualityBench:
    source: str  # how the set was made or where it was read from
    documents: list[Scored]
    rows_note: str | None  # why line items are not measured, when they are not
    details: Path | None = None
    counts: Counter[str] = field(default_factory=Counter)
    ocr: OcrSpeed | None = None  # None when this machine has no OCR


def content_type(path: Path) -> str:
    from documents.uploads import KINDS as UPLOAD_KINDS

    extension = path.suffix.lower().lstrip(".")
    for name in (extension, _ALIASES.get(extension, "")):
        if name in UPLOAD_KINDS:
            return UPLOAD_KINDS[name].content_type
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _devset(bench: Bench) -> tuple[Path, str]:
    args = bench.args
    if args.devset is not None:
        return args.devset, f"`{args.devset}` (labels.json there)"
    from samples.devset import write

    folder = bench.tmp / "devset"
    log(f"quality: writing a development set of {args.devset_count} files, seed {args.devset_seed}")
    write(folder, args.devset_count, args.devset_seed)
    command = f"python -m samples.devset --count {args.devset_count} --seed {args.devset_seed}"
    return folder, f"written by `{command}`"


def _fields() -> tuple[list[Any], str | None]:
    """The five fields and the line-items table; the table is built as the JSON form gives it
    where the text syntax cannot say it yet."""
    from extraction.fields import FieldSpec, InvalidFields, parse_fields

    five = parse_fields(FIELDS)
    try:
        table = parse_fields(LINE_ITEMS)
    except InvalidFields:
        table = [
            FieldSpec(
                name="line items",
                type="table",
                description="one row per invoice line",
                columns=[
                    {"name": name, "type": type_, "description": ""}
                    for name, type_ in (
                        ("description", "string"),
                        ("quantity", "number"),
                        ("unit price", "number"),
                        ("amount", "number"),
                    )
                ],
            )
        ]
    return [*five, *table], None


def _rows(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, list) and all(isinstance(row, dict) for row in value):
        return value
    return None


def _extract(engine: Any, request: Any, einvoice_xml: str) -> dict[str, Any]:
    """What the pipeline does (`batches.pipeline.processing`): an e-invoice's XML fills the
    fields it carries, the engine the rest."""
    from extraction.einvoice import prefill, stored_invoice

    if not einvoice_xml:
        result: dict[str, Any] = engine.extract(request).result
        return result
    xml_first = prefill(request, stored_invoice(einvoice_xml))
    rest = engine.extract(xml_first.rest).result if xml_first.rest.fields else None
    return xml_first.result(rest, engine=engine.name)


def measure(bench: Bench) -> QualityBench:
    from documents import sandbox
    from documents.models import value_status
    from documents.readers import read_document
    from extraction.contract import ExtractionError, ExtractionRequest
    from extraction.local.engine import LocalEngine

    folder, source = _devset(bench)
    entries = json.loads((folder / "labels.json").read_text())["documents"]
    specs, rows_note = _fields()
    engine = LocalEngine()
    scored = []
    for entry in entries:
        path = folder / entry["file"]
        kind = content_type(path)
        values: dict[str, Any] = {}
        statuses: dict[str, str] = {}
        rows: RowScore | None = None
        error, extract_seconds, pages, ocr_pages = None, None, 0, 0
        started = time.perf_counter()
        try:
            read = read_document(path, content_type=kind, filename=path.name)
        except ExtractionError as refused:
            read_seconds, error = time.perf_counter() - started, refused.code
        else:
            read_seconds = time.perf_counter() - started
            layout = read.layout
            pages = read.page_count or 0
            ocr_pages = sum(page.ocr_confidence is not None for page in layout)
            request = ExtractionRequest(
                text=read.text,
                prompt="",
                fields=specs,
                filename=path.name,
                content_type=kind,
                page_count=read.page_count,
                layout=layout,
            )
            started = time.perf_counter()
            try:
                result = _extract(engine, request, read.einvoice_xml)
            except ExtractionError as refused:
                error = refused.code
            else:
                values = {name: item.get("value") for name, item in result["fields"].items()}
                statuses = {name: value_status(item) for name, item in result["fields"].items()}
                extracted = _rows(values.get("line items"))
                if extracted is not None:
                    rows = score_rows(entry["line_items"], extracted)
            extract_seconds = time.perf_counter() - started
        outcomes = {name: judge(name, entry["fields"][name], values.get(name)) for name in SCORED}
        scored.append(
            Scored(
                entry,
                values,
                statuses,
                outcomes,
                error,
                read_seconds,
                extract_seconds,
                pages,
                ocr_pages,
                rows,
            )
        )
    ocr = _ocr_side_by_side(folder, entries)
    sandbox.shutdown()
    details = bench.args.quality_details
    if details is not None:
        details.write_text(json.dumps([_detail(document) for document in scored], indent=1) + "\n")
    log(f"quality: scored {len(scored)} documents")
    return QualityBench(
        source=source, documents=scored, rows_note=rows_note, details=details, ocr=ocr
    )


def _ocr_side_by_side(folder: Path, entries: list[dict[str, Any]]) -> OcrSpeed | None:
    """Every scan OCRed by Sheaf (`ocr_document`: a sandbox call per page, under the OCR limits)
    and, right after it, the same page images (`documents.ocr.page_image`) by tesserocr in this
    process, words and boxes read from both; both warmed on the first scan's first page first,
    so neither pays for loading the model. Sheaf's text is also held against the born-digital
    twin's (word recall, as `bench/ocr_choice.py` counts it)."""
    from django.conf import settings

    from documents.ocr_reader import FORMATS, ocr_available, ocr_document

    scans = [entry for entry in entries if entry["kind"] == "scan"]
    if not scans or not ocr_available():
        return None
    import pypdfium2
    import tesserocr

    from bench.ocr_choice import recall, words
    from documents.ocr import page_image

    engine = tesserocr.PyTessBaseAPI(
        path=settings.SHEAF_OCR_TESSDATA, lang=settings.SHEAF_OCR_LANGUAGES
    )

    def raw(path: Path, kind: str, number: int) -> None:
        image, dpi, _count = page_image(str(path), kind, number, max_pages=10_000, max_pixels=10**9)
        engine.SetImage(image)
        engine.SetSourceResolution(dpi)
        engine.Recognize()
        level = tesserocr.RIL.WORD
        for word in tesserocr.iterate_level(engine.GetIterator(), level):
            try:
                word.GetUTF8Text(level)
            except RuntimeError:  # an empty page's one element
                continue
            word.BoundingBox(level)
            word.Confidence(level)

    def where(entry: dict[str, Any]) -> tuple[Path, str]:
        path = folder / entry["file"]
        return path, path.suffix.lstrip(".").lower()

    first, extension = where(scans[0])
    ocr_document(first, extension=extension, filename=first.name, pages=[1])
    raw(first, FORMATS[extension], 1)
    sheaf_seconds = raw_seconds = 0.0
    pages = expected_words = found_words = 0
    weighted: list[float] = []
    for entry in scans:
        path, extension = where(entry)
        started = time.perf_counter()
        result = ocr_document(path, extension=extension, filename=path.name)
        sheaf_seconds += time.perf_counter() - started
        started = time.perf_counter()
        for page in result.pages:
            raw(path, FORMATS[extension], page.layout.number)
        raw_seconds += time.perf_counter() - started
        pages += len(result.pages)
        twin = pypdfium2.PdfDocument(folder / entry["twin_of"])
        try:
            for page, twin_page in zip(result.pages, twin, strict=True):
                hits, total = recall(
                    words(twin_page.get_textpage().get_text_bounded()), words(page.text)
                )
                found_words, expected_words = found_words + hits, expected_words + total
        finally:
            twin.close()
        if result.confidence is not None:
            weighted.append(result.confidence)
    engine.End()
    return OcrSpeed(
        scans=len(scans),
        pages=pages,
        sheaf_seconds=sheaf_seconds,
        raw_seconds=raw_seconds,
        words=expected_words,
        words_read=found_words,
        confidence=sum(weighted) / len(weighted) if weighted else None,
    )


def _detail(document: Scored) -> dict[str, Any]:
    return {
        "file": document.entry["file"],
        "error": document.error,
        "fields": {
            name: {
                "expected": document.entry["fields"][name],
                "extracted": document.values.get(name),
                "outcome": document.outcomes[name],
            }
            for name in SCORED
        },
    }


# ---- the report ---------------------------------------------------------------------------------


def _cell(documents: list[Scored], name: str) -> str:
    outcomes = Counter(document.outcomes[name] for document in documents)
    rate = outcomes[Outcome.CORRECT] / len(documents)
    wrong = outcomes[Outcome.WRONG]
    return f"{rate:.0%}" + (f" ({wrong} wrong)" if wrong else "")


def _table(title: str, groups: Iterable[tuple[str, list[Scored]]]) -> list[str]:
    head = f"| {title} | documents | read | " + " | ".join(SCORED) + " | all five |"
    lines = [head, "|---|---:|---:|" + "---:|" * (len(SCORED) + 1)]
    for name, documents in groups:
        if not documents:
            continue
        read = sum(document.extract_seconds is not None for document in documents)
        values = [document.outcomes[field] for document in documents for field in SCORED]
        overall = values.count(Outcome.CORRECT) / len(values)
        wrong = values.count(Outcome.WRONG)
        lines.append(
            f"| {name} | {len(documents)} | {read} | "
            + " | ".join(_cell(documents, field) for field in SCORED)
            + f" | {overall:.0%}"
            + (f" ({wrong} wrong)" if wrong else "")
            + " |"
        )
    return [*lines, ""]


def _grouped(
    documents: list[Scored], key: Callable[[Scored], str], order: Iterable[str] = ()
) -> list[tuple[str, list[Scored]]]:
    groups: dict[str, list[Scored]] = defaultdict(list)
    for document in documents:
        groups[key(document)].append(document)
    names = [*order, *sorted(set(groups) - set(order))]
    return [(name, groups[name]) for name in names if name in groups]


def _ocr_line(result: QualityBench) -> str:
    ocr = result.ocr
    if ocr is not None:
        sheaf, raw = ocr.pages / ocr.sheaf_seconds, ocr.pages / ocr.raw_seconds
        confidence = f"{ocr.confidence:.0f}" if ocr.confidence is not None else "none"
        return (
            f"- OCR: {sheaf:.2f} pages/s (`documents.ocr_reader.ocr_document`, one sandbox call "
            f"per page) against {raw:.2f} pages/s for tesserocr on the same page images in this "
            f"process, {sheaf / raw:.2f} x (target >= 0.8), over the {ocr.pages} pages of the "
            f"{ocr.scans} scans; {ocr.words_read / ocr.words:.1%} of the born-digital twins' "
            f"{ocr.words} words read; mean confidence {confidence}."
        )
    ocr_pages = sum(d.ocr_pages for d in result.documents)
    ocr_seconds = sum(d.read_seconds for d in result.documents if d.ocr_pages)
    if ocr_pages and ocr_seconds:
        return f"- OCR: {ocr_pages / ocr_seconds:.1f} pages/s over {ocr_pages} OCRed pages."
    return "- OCR: not measured (no scans in the set, or OCR is not installed here)."


def _speed(result: QualityBench) -> list[str]:
    reached = [d for d in result.documents if d.extract_seconds is not None]
    engine_seconds = sum(d.extract_seconds or 0.0 for d in reached)
    # Scans are read by OCR, measured on its own line.
    texts = [d for d in reached if d.entry["kind"] != "scan"]
    read_pages = sum(d.pages for d in texts)
    read_seconds = sum(d.read_seconds for d in texts)
    lines = [
        f"- Engine: {len(reached) / engine_seconds:.0f} documents/s "
        f"({len(reached)} documents in {engine_seconds:.2f} s of `extract()`, one at a time)."
        if reached
        else "- Engine: no document reached it.",
        f"- Reader (text, in the sandbox): {read_pages / read_seconds:.0f} pages/s over the "
        f"{read_pages} pages of the documents it read, scans left out. Reads between OCR "
        "calls pay for starting sandbox children: a child that OCRed holds the model, above "
        "SHEAF_READER_RECYCLE_MB, so it is replaced after the next read it serves."
        if read_seconds and read_pages
        else "- Reader: no pages read.",
        _ocr_line(result),
    ]
    return [*lines, ""]


def _line_items(result: QualityBench) -> list[str]:
    if result.rows_note is not None:
        return [f"Line items: {result.rows_note}.", ""]
    lines = []
    for kind in ("all", *KINDS):
        documents = [
            d
            for d in result.documents
            if d.entry["line_items"] and kind in ("all", d.entry["kind"])
        ]
        if documents:
            lines.append(f"- {kind}: {_rows_summary(documents)}")
    if not lines:
        return ["Line items: no document of the set has any.", ""]
    return ["Line items (Extend's measure, rows paired in order by best match):", *lines, ""]


def _rows_summary(documents: list[Scored]) -> str:
    """Row count exact per document, and correct cells / max(expected, extracted) cells; a
    document the engine gave no rows for (or refused) counts all its cells as wrong."""
    total = len(documents)
    scores = [d.rows for d in documents if d.rows is not None]
    count_exact = sum(score.count_exact for score in scores)
    correct = sum(score.correct_cells for score in scores)
    cells = sum(score.cells for score in scores) + sum(
        len(d.entry["line_items"]) * len(COLUMNS) for d in documents if d.rows is None
    )
    exact_docs = sum(
        d.rows is not None and d.rows.count_exact and d.rows.correct_cells == d.rows.cells
        for d in documents
    )
    return (
        f"{total} documents; row count exact {count_exact / total:.0%} ({count_exact}); "
        f"cells {correct / cells:.1%} ({correct} of {cells}); every cell exact on "
        f"{exact_docs / total:.0%} of documents ({exact_docs})"
    )


def _examples(result: QualityBench, limit: int = 12) -> list[str]:
    wrong = [
        (d.entry["file"], name, d.entry["fields"][name], d.values.get(name), d.statuses.get(name))
        for d in result.documents
        for name in SCORED
        if d.outcomes[name] is Outcome.WRONG
    ]
    if not wrong:
        return []
    checked = sum(status == "checked" for *_, status in wrong)
    lines = [
        f"Wrong values (the first {min(limit, len(wrong))} of {len(wrong)}; marked `checked`: "
        f"{checked}, which must be 0), with the status Sheaf gave each:",
        "",
    ]
    lines += [
        f"- `{file}` {name}: expected `{expected}`, got `{got}` ({status})"
        for file, name, expected, got, status in wrong[:limit]
    ]
    return [*lines, ""]


def report(bench: Bench, result: QualityBench) -> list[str]:
    documents = result.documents
    kinds = Counter(d.entry["kind"] for d in documents)
    errors = Counter(
        f"{d.entry['kind']} {d.entry['format']}: {d.error}" for d in documents if d.error
    )
    values = [d.outcomes[name] for d in documents for name in SCORED]
    outcomes = Counter(values)
    lines = [
        "### 9. Extraction quality, offline engine, on the development set",
        "",
        f"{len(documents)} documents ({', '.join(f'{kinds[k]} {k}' for k in KINDS)}), "
        f"{result.source}. Each file read by `documents.readers.read_document` (content type by "
        "extension, as an upload would be typed) and extracted as the pipeline does: the fields an "
        "e-invoice's XML carries from it (`extraction.einvoice`), the rest by "
        "`extraction.local.engine.LocalEngine`, in this process; fields "
        f"`{FIELDS}`. Exact match after normalisation (`bench/scoring.py`): dates ISO, amounts "
        "to the cent (a credit note's are negative), currency ISO 4217, invoice number "
        "ignoring spaces, supplier ignoring case and punctuation. A file the reader or engine "
        'refuses counts every field missing. A cell is the share correct; "(n wrong)" counts '
        "values given but wrong (a wrong value is worse than a missing one); the rest were "
        'missing. "read" = documents that reached the engine.',
        "",
        f"Overall: {outcomes[Outcome.CORRECT] / len(values):.1%} of {len(values)} values "
        f"correct, {outcomes[Outcome.WRONG]} wrong, {outcomes[Outcome.MISSING]} missing.",
        "",
        *_table("kind", _grouped(documents, lambda d: d.entry["kind"], KINDS)),
        *_table("language", _grouped(documents, lambda d: d.entry["language"])),
        *_table(
            "format",
            _grouped(documents, lambda d: f"{d.entry['kind']} {d.entry['format']}"),
        ),
        *_table("layout", _grouped(documents, lambda d: d.entry["layout"])),
        *_table("document type", _grouped(documents, lambda d: d.entry["document_type"])),
        "Refused: "
        + ("; ".join(f"{what} x{n}" for what, n in sorted(errors.items())) or "none")
        + ".",
        "",
        *_line_items(result),
        *_speed(result),
        *_examples(result),
    ]
    return lines
