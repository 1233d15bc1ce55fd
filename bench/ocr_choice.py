"""Choosing the OCR engine: candidates side by side on the development set's scans.

    python -m samples.devset --out var/devset --count 120 --seed 1
    .venv/bin/python bench/ocr_choice.py --devset var/devset \\
        --engine tesserocr:eng --engine tesserocr:Latin --engine tesseract-cli:Latin
    other-venv/bin/python bench/ocr_choice.py --devset var/devset --engine rapidocr

Every page of every scan in the set (image-only PDFs rendered by pypdfium2 at --dpi, PNG, JPEG and
TIFF frames at their own resolution) is written once as a greyscale PNG, with a page of the
characters the offline engine must read (ä ö ü ß é è ç ñ € £ and their capitals), drawn by fpdf2
and pdfium, clean at 300 dpi and scanned by `samples.scans.degrade` at 200 dpi. Then each
candidate runs in a process of its own (so its peak memory and CPU time are its own) over those
pages, one at a time, and reports:

- word recall: the share of the born-digital twin's words (whitespace-separated, outer
  punctuation stripped, case kept; as a multiset, so a word twice must be read twice) that the
  page's OCR text holds, over every scan page;
- accented words: the same over the twin's words with one of the characters above;
- the characters page: for each character, how many of the words holding it were read exactly;
- CPU seconds per page (user + system of the candidate's process and its children: the engine's
  threads and any program it starts), wall-clock pages/s, the time to load the engine;
- peak resident memory (VmHWM) and peak address space (VmPeak, what the sandbox's RLIMIT_AS
  counts) of the candidate's process, or of the programs it started, whichever is larger.

Candidates: ``tesserocr:LANGS`` (libtesseract in process; LANGS as tesseract spells them,
``eng+deu``, or ``Latin`` for the Latin-script model), ``tesseract-cli:LANGS`` (one run of the
``tesseract`` program per page, text out), ``rapidocr`` (rapidocr-onnxruntime's shipped models),
and ``sheaf``: Sheaf's own "ocr" operation (`documents.ocr`) in process on the original files,
which picks each page's resolution and median-filters it before the Latin model reads it.
Traineddata comes from --tessdata (Debian's tesseract-ocr-* packages put it in
/usr/share/tesseract-ocr/5/tessdata). The candidate's own process needs only Pillow and its
engine, so rapidocr can run from a virtualenv of its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

TESSDATA = "/usr/share/tesseract-ocr/5/tessdata"
# The characters the issue names, and their capitals where a word can start with one.
CHARACTERS = "äöüßéèçñ€£ÄÖÜÉ"
CHARACTER_LINES = (
    "Müller Bäckerei Straße Größe Grüße Fußweg März",
    "Ärger Öffnung Übersicht Österreich Überweisung",
    "café crème façade garçon élève Société Reçu Thérèse",
    "niño España año señor Peña mañana",
    "Total €1.234,56 and €99,00 Betrag 45,00 €",
    "Amount £1,234.56 and £8.79 paid £12.00",
    "Prüfung Rechnungsbetrag Lösung Gebühr",
    "Très Où Éditions Liège Pâté Noël",
)
_PUNCTUATION = ".,:;()[]{}|\"'*!?"


# ---- the pages ----------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """A text's words for comparison: whitespace-separated, outer punctuation stripped."""
    stripped = (word.strip(_PUNCTUATION) for word in text.split())
    return [word for word in stripped if word]


def prepare(devset: Path, folder: Path, dpi: int, min_dpi: int) -> list[dict[str, Any]]:
    """Every scan page as a PNG in `folder`, with its twin's words (an image under `min_dpi`
    scaled up to it, as `documents.ocr` does); then the characters pages."""
    import random

    import pypdfium2
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from samples.scans import degrade, rasterise

    entries = json.loads((devset / "labels.json").read_text())["documents"]
    pages: list[dict[str, Any]] = []
    for entry in entries:
        if entry["kind"] != "scan":
            continue
        twin = pypdfium2.PdfDocument(devset / entry["twin_of"])
        expected = [page.get_textpage().get_text_bounded() for page in twin]
        twin.close()
        path = devset / entry["file"]
        if entry["format"] == "pdf":
            images = [(image, dpi) for image in rasterise(path.read_bytes(), dpi)]
        else:
            with Image.open(path) as opened:
                own = round(opened.info.get("dpi", (300, 300))[0])
                images = []
                for frame in range(getattr(opened, "n_frames", 1)):
                    opened.seek(frame)
                    images.append((opened.convert("L"), own))
        for number, ((image, resolution), text) in enumerate(zip(images, expected, strict=True), 1):
            name = folder / f"{path.stem}-{entry['format']}-p{number}.png"
            if resolution < min_dpi:
                size = (image.width * min_dpi // resolution, image.height * min_dpi // resolution)
                image, resolution = image.resize(size, Image.Resampling.LANCZOS), min_dpi
            image.save(name, dpi=(resolution, resolution))
            pages.append(
                {
                    "png": str(name),
                    "dpi": resolution,
                    "expected": text,
                    "file": entry["file"],
                    "source": str(path.resolve()),
                    "format": entry["format"],
                    "page": number,
                }
            )
    for name, resolution, scanned in (
        ("characters-clean", 300, False),
        ("characters-scan", 200, True),
    ):
        image = rasterise(_characters_pdf(), resolution)[0]
        if scanned:
            image = degrade(image, random.Random(7))  # noqa: S311 (seeded, not secret)
        png = folder / f"{name}.png"
        image.save(png, dpi=(resolution, resolution))
        pages.append(
            {
                "png": str(png),
                "dpi": resolution,
                "expected": "\n".join(CHARACTER_LINES),
                "file": name,
                "source": str(png),
                "format": "png",
                "page": 1,
            }
        )
    return pages


def _characters_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    pdf.core_fonts_encoding = "windows-1252"  # as samples.layouts draws invoices
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)  # a core font: Windows-1252 holds every character above
    for line in CHARACTER_LINES:
        pdf.cell(0, 22, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# ---- the candidates (run in a process of their own) -------------------------------------------


class Tesserocr:
    def __init__(self, languages: str, tessdata: str) -> None:
        import tesserocr

        self.tesserocr = tesserocr
        self.api = tesserocr.PyTessBaseAPI(path=tessdata, lang=languages)

    def read(self, png: str, dpi: int) -> str:
        from PIL import Image

        with Image.open(png) as image:
            self.api.SetImage(image)
            self.api.SetSourceResolution(dpi)
            text: str = self.api.GetUTF8Text()
        return text


class TesseractCli:
    def __init__(self, languages: str, tessdata: str) -> None:
        self.languages = languages
        self.tessdata = tessdata

    def read(self, png: str, dpi: int) -> str:
        command = ["tesseract", png, "-", "-l", self.languages, "--tessdata-dir", self.tessdata]
        command += ["--dpi", str(dpi)]
        done = subprocess.run(command, capture_output=True, check=True, text=True)  # noqa: S603
        return done.stdout


class RapidOcr:
    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.engine = RapidOCR()

    def read(self, png: str, dpi: int) -> str:
        found, _ = self.engine(png)
        # Lines, each [box, text, score]; a line's words are separated by spaces where it saw them.
        return "\n".join(line[1] for line in found or ())


class Sheaf:
    """Sheaf's "ocr" operation (documents.ocr) in this process, on the original files: its own
    rendering and clean-up (the pages' resolution, the median filter) and the Latin model."""

    def __init__(self, tessdata: str) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from documents.ocr import ocr

        self.ocr = ocr
        self.tessdata = tessdata

    def read(self, page: dict[str, Any]) -> str:
        arguments = {"path": page["source"], "format": page["format"], "page": page["page"]}
        arguments |= {"max_pages": 100, "max_pixels": 50_000_000}
        answer = self.ocr({**arguments, "languages": "Latin", "tessdata": self.tessdata})
        text: str = answer["text"]
        return text


def _candidate(spec: str, tessdata: str) -> Any:
    name, _, languages = spec.partition(":")
    if name == "sheaf":
        return Sheaf(tessdata)
    if name == "tesserocr":
        return Tesserocr(languages or "eng", tessdata)
    if name == "tesseract-cli":
        return TesseractCli(languages or "eng", tessdata)
    if name == "rapidocr":
        return RapidOcr()
    raise SystemExit(f"unknown candidate {spec!r}")


def _status(field: str) -> int:
    """A VmXXX line of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def work(spec: str, pages_file: Path, tessdata: str) -> None:
    """The candidate's process: OCR every page, print one JSON line."""
    pages = json.loads(pages_file.read_text())
    started = time.perf_counter()
    candidate = _candidate(spec, tessdata)
    load_seconds = time.perf_counter() - started
    cpu_before = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    texts = []
    started = time.perf_counter()
    for page in pages:
        if isinstance(candidate, Sheaf):
            texts.append(candidate.read(page))
        else:
            texts.append(candidate.read(page["png"], page["dpi"]))
    wall = time.perf_counter() - started
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - cpu_before
    children_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "texts": texts,
                "load_seconds": load_seconds,
                "wall": wall,
                "cpu": cpu,
                "peak_rss": max(_status("VmHWM"), children_rss),
                "peak_address_space": _status("VmPeak"),
            }
        )
    )


# ---- scoring ----------------------------------------------------------------------------------


def recall(expected: list[str], read: list[str]) -> tuple[int, int]:
    """(words of `expected` found in `read`, as multisets; words of `expected`)."""
    found = Counter(read)
    hits = 0
    for word in expected:
        if found[word] > 0:
            found[word] -= 1
            hits += 1
    return hits, len(expected)


def score(pages: list[dict[str, Any]], outcome: dict[str, Any]) -> dict[str, Any]:
    pairs = list(zip(pages, outcome["texts"], strict=True))
    scan_pairs = [(page, text) for page, text in pairs if page["file"].startswith("scan/")]
    hits = total = accented_hits = accented_total = 0
    for page, text in scan_pairs:
        expected, read = words(page["expected"]), words(text)
        h, t = recall(expected, read)
        hits, total = hits + h, total + t
        accented = [word for word in expected if any(c in word for c in CHARACTERS)]
        h, t = recall(accented, read)
        accented_hits, accented_total = accented_hits + h, accented_total + t
    characters: dict[str, dict[str, str]] = {}
    for page, text in pairs:
        if page["file"].startswith("scan/"):
            continue
        read = Counter(words(text))
        for character in CHARACTERS:
            holding = [w for w in words(page["expected"]) if character in w]
            got = sum(1 for w in holding if read[w] > 0)
            characters.setdefault(character, {})[page["file"]] = f"{got}/{len(holding)}"
    return {
        "scan_pages": len(scan_pairs),
        "word_recall": hits / total,
        "words": total,
        "accented_recall": accented_hits / accented_total if accented_total else None,
        "accented_words": accented_total,
        "characters": characters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devset", type=Path, required=True)
    parser.add_argument("--engine", action="append", default=[], help="a candidate; repeatable")
    parser.add_argument("--dpi", type=int, default=300, help="rendering of image-only PDF pages")
    parser.add_argument(
        "--min-dpi", type=int, default=0, help="scale images of a lower resolution up to this"
    )
    parser.add_argument("--tessdata", default=TESSDATA)
    parser.add_argument("--pages", type=Path, help="reuse the pages written by an earlier run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--text-out", type=Path, help="write every page's OCR text here (JSON)")
    args = parser.parse_args()
    if args.worker:
        work(args.worker, args.pages, args.tessdata)
        return
    if args.pages is None:
        folder = Path(tempfile.mkdtemp(prefix="ocr-choice-"))
        pages = prepare(args.devset, folder, args.dpi, args.min_dpi)
        args.pages = folder / "pages.json"
        args.pages.write_text(json.dumps(pages))
        print(f"pages: {len(pages)} in {folder}", file=sys.stderr)
    pages = json.loads(args.pages.read_text())
    results = {}
    for spec in args.engine:
        command = [sys.executable, __file__, "--devset", str(args.devset), "--worker", spec]
        command += ["--pages", str(args.pages), "--tessdata", args.tessdata]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode:
            print(f"{spec}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
        scored = score(pages, outcome)
        count = len(pages)
        summary = {
            "engine": spec,
            **{k: v for k, v in scored.items() if k != "characters"},
            "pages": count,
            "cpu_per_page": outcome["cpu"] / count,
            "pages_per_second": count / outcome["wall"],
            "load_seconds": outcome["load_seconds"],
            "peak_rss_mb": outcome["peak_rss"] / 2**20,
            "peak_address_space_mb": outcome["peak_address_space"] / 2**20,
            "characters": scored["characters"],
        }
        results[spec] = outcome["texts"]
        print(json.dumps(summary, ensure_ascii=False), flush=True)
    if args.text_out:
        args.text_out.write_text(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    sys.exit(main())
