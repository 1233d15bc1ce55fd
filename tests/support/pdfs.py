"""Hand-built PDFs for reader tests: small files that provoke the sandbox's limits."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence


def build_pdf(objects: list[bytes]) -> bytes:
    """A PDF whose object n is objects[n - 1]; object 1 is the catalog."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def pdf_stream(data: bytes, entries: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), entries, data)


def one_page_pdf(
    contents: bytes, *, content_entries: bytes = b"", extra: Sequence[bytes] = ()
) -> bytes:
    xobjects = b"".join(b"/X%d %d 0 R " % (i, 6 + i) for i in range(len(extra)))
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> /XObject << %s>> >> >>" % xobjects,
            pdf_stream(contents, content_entries),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            *extra,
        ]
    )


def decompression_bomb(gibibytes: int = 4) -> bytes:
    """A page whose FlateDecode content stream inflates to `gibibytes` GiB of zeros (about 4 MB).

    After a full flush, deflate output for the same input repeats byte for byte, so one compressed
    mebibyte is repeated instead of compressing gigabytes here (the trailing checksum is wrong,
    which a reader only notices after inflating everything)."""
    compressor = zlib.compressobj(9)
    mebibyte = bytes(2**20)
    head = compressor.compress(mebibyte) + compressor.flush(zlib.Z_FULL_FLUSH)
    body = compressor.compress(mebibyte) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = head + body * (gibibytes * 1024 - 1) + compressor.flush()
    return one_page_pdf(data, content_entries=b"/Filter /FlateDecode")


def cpu_burner(draws: int = 500) -> bytes:
    """18 KB that keeps a PDF reader busy: the page draws one form XObject `draws` times, and
    each drawing re-runs the form's 2,000 text operators. pypdf's text extraction takes about ten
    CPU seconds per 500 `draws`; pdfium, which keeps every drawing's objects, minutes and about
    350 MB for 500."""
    form = b"BT /F1 12 Tf " + b"(a) Tj " * 2000 + b"ET"
    form_entries = (
        b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >>"
    )
    return one_page_pdf(b"/X0 Do\n" * draws, extra=[pdf_stream(form, form_entries)])


def text_pdf(*lines: str) -> bytes:
    """A one-page PDF with a text layer: each line drawn in Helvetica, top to bottom."""
    shown = b"".join(
        b"(%s) Tj T* " % line.encode("latin-1").replace(b"(", b"\\(").replace(b")", b"\\)")
        for line in lines
    )
    return one_page_pdf(b"BT /F1 12 Tf 14 TL 72 720 Td " + shown + b"ET")


def cyclic_page_tree() -> bytes:
    """A page tree that lists itself among its own kids."""
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )


def _padded_flate(head: bytes, mebibytes: int) -> bytes:
    """`head` followed by `mebibytes` MiB of "x", deflated (one compressed MiB, repeated as in
    `decompression_bomb`). The padding is not whitespace, so a parser stops at it at once."""
    compressor = zlib.compressobj(9)
    padding = b"x" * 2**20
    data = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    first = compressor.compress(padding) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(padding) + compressor.flush(zlib.Z_FULL_FLUSH)
    return data + first + repeat * (mebibytes - 1) + compressor.flush()


def memory_hog(pages: int = 16, mebibytes: int = 60) -> bytes:
    """About 60 KB per page that needs `mebibytes` MiB of memory per page just to count the pages.

    Each page object sits alone in its own object stream, padded to `mebibytes` MiB once inflated
    (under the reader's per-stream limit, so no safety limit trips). Counting the pages resolves
    every page, and the reader keeps each inflated object stream cached: memory only grows.
    """
    out = bytearray(b"%PDF-1.7\n")
    offsets: dict[int, int] = {}

    def put(number: int, body: bytes) -> None:
        offsets[number] = len(out)
        out.extend(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    first_page, first_stream = 10, 10 + pages
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
    put(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    put(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages))
    put(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    put(4, pdf_stream(b"BT /F1 12 Tf 72 720 Td (Invoice) Tj ET"))
    in_stream: dict[int, int] = {}
    for i in range(pages):
        header = b"%d 0 " % (first_page + i)
        page = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 3 0 R >> >> >>\n"
        )
        data = _padded_flate(header + page, mebibytes)
        entries = b"/Type /ObjStm /N 1 /First %d /Filter /FlateDecode" % len(header)
        put(first_stream + i, pdf_stream(data, entries))
        in_stream[first_page + i] = first_stream + i
    # Objects inside object streams need a cross-reference stream (type 2 entries).
    xref_number = first_stream + pages
    offsets[xref_number] = len(out)
    rows = bytearray()
    for number in range(xref_number + 1):
        if number in offsets:
            rows += struct.pack(">BIH", 1, offsets[number], 0)
        elif number in in_stream:
            rows += struct.pack(">BIH", 2, in_stream[number], 0)
        else:
            rows += struct.pack(">BIH", 0, 0, 65535 if number == 0 else 0)
    entries = b"/Type /XRef /Size %d /W [1 4 2] /Root 1 0 R" % (xref_number + 1)
    out += b"%d 0 obj\n%s\nendobj\n" % (xref_number, pdf_stream(bytes(rows), entries))
    out += b"startxref\n%d\n%%%%EOF\n" % offsets[xref_number]
    return bytes(out)
