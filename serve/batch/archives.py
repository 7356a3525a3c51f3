"""Documents from tar, zip and WARC archives, read in place.

Nothing is ever extracted: a member's name is only used as its document id, so names with `..` or an
absolute path cannot write anywhere. Each member is read with a size cap (`max_member_bytes`): a member
declared or found to be larger (a decompression bomb) becomes an error row and costs at most the cap in
memory, since reading stops one byte past it.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from typing import IO

from frontwire.serve.batch.formats import DOCUMENT_SUFFIXES, STREAM_ERRORS
from frontwire.serve.batch.sources import (
    HTML_ERRORS,
    Item,
    ReadOptions,
    SourceDoc,
    SourceError,
    docs_from_bytes,
)

MEMBER_SUFFIXES = (*DOCUMENT_SUFFIXES, ".jsonl", ".ndjson")
HTML_TYPES = ("text/html", "application/xhtml+xml")


def _unsupported(name: str) -> bool:
    return not name.lower().endswith(MEMBER_SUFFIXES)


def read_tar(stream: IO[bytes], display: str, options: ReadOptions) -> Iterator[Item]:
    """Members in archive order, streaming (`r|`): the archive is read once, front to back."""
    cap = options.max_member_bytes
    try:
        # opened outside `with` so that a bad header is an error row; the `with` below closes it
        archive = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115
    except tarfile.TarError as err:
        yield SourceError(display, f"not a readable tar archive: {err}")
        return
    with archive:
        try:
            for member in archive:
                if member.isdir():
                    continue
                if not member.isfile():
                    # links and devices point at other names: there is nothing to read in place
                    yield SourceError(display, "not a regular file (link or device)", member=member.name)
                elif _unsupported(member.name):
                    yield SourceError(display, "unsupported member type (want .txt/.html/.json/.jsonl)",
                                      member=member.name)
                elif member.size > cap:
                    yield SourceError(display, f"member is {member.size} bytes, over max_member_bytes={cap}",
                                      member=member.name)
                else:
                    handle = archive.extractfile(member)
                    data = handle.read(cap + 1) if handle is not None else b""
                    yield from docs_from_bytes(member.name, data, member.name, display, options, member.name)
        except (tarfile.TarError, *STREAM_ERRORS) as err:
            yield SourceError(display, f"archive unreadable from here on ({type(err).__name__}: {err})")


def read_zip(raw: IO[bytes], display: str, options: ReadOptions) -> Iterator[Item]:
    cap = options.max_member_bytes
    try:
        archive = zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, OSError) as err:
        yield SourceError(display, f"not a readable zip archive: {err}")
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if _unsupported(info.filename):
                yield SourceError(display, "unsupported member type (want .txt/.html/.json/.jsonl)",
                                  member=info.filename)
                continue
            if info.file_size > cap:
                yield SourceError(display, f"member is {info.file_size} bytes, over max_member_bytes={cap}",
                                  member=info.filename)
                continue
            try:
                with archive.open(info) as handle:
                    # the declared size can lie: the cap, not the header, bounds what is read
                    data = handle.read(cap + 1)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, *STREAM_ERRORS) as err:
                yield SourceError(display, f"unreadable member ({type(err).__name__}: {err})", member=info.filename)
                continue
            if len(data) > cap:
                yield SourceError(display, f"member inflates past max_member_bytes={cap}", member=info.filename)
                continue
            yield from docs_from_bytes(info.filename, data, info.filename, display, options, info.filename)


# crawl bookkeeping, not documents: the request sent, metadata about a capture, the file's own header, and
# "revisit" (a capture identical to an earlier one, stored without its body)
WARC_BOOKKEEPING = ("request", "metadata", "warcinfo", "revisit")


def read_warc(stream: IO[bytes], display: str, options: ReadOptions) -> Iterator[Item]:
    """Documents of a WARC file: HTML `response` records (a crawl), HTML or plain-text `resource` records, and
    `conversion` records (extracted text, as in Common Crawl's WET files). The document id is the target URI.

    Bookkeeping records (`WARC_BOOKKEEPING`, and the crawler's own files stored under `metadata:` URIs) are
    passed over; any other record (a non-HTML response, an image resource, a segmented record, one over the
    size cap) becomes an error row.
    """
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    cap = options.max_member_bytes
    try:
        for record in ArchiveIterator(stream, arc2warc=True):
            if record.rec_type in WARC_BOOKKEEPING:
                continue
            uri = record.rec_headers.get_header("WARC-Target-URI") or record.rec_headers.get_header("WARC-Record-ID")
            if uri.startswith("metadata:"):  # the crawler's own files (wget: MANIFEST.txt, wget.log, arguments)
                continue
            yield _warc_document(record, uri, display, cap)
    except ArchiveLoadFailed as err:
        yield SourceError(display, f"not a readable WARC file: {err}")


def _warc_document(record, uri: str, display: str, cap: int) -> Item:
    from frontwire.paragraphs import html_to_text

    if record.rec_type == "response":
        # a crawl's plain-text responses are robots.txt and the like, not articles
        content_type = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
        wanted = HTML_TYPES
    elif record.rec_type in ("resource", "conversion"):
        content_type = record.rec_headers.get_header("Content-Type") or ""
        wanted = (*HTML_TYPES, "text/plain")
    else:
        return SourceError(display, f"unsupported WARC record type {record.rec_type!r}", member=uri)
    kind = content_type.split(";")[0].strip().lower()
    if kind not in wanted:
        what = "HTML" if wanted == HTML_TYPES else "HTML or plain text"
        return SourceError(display, f"{record.rec_type} is not {what} (Content-Type {content_type!r})", member=uri)
    data = record.content_stream().read(cap + 1)
    if len(data) > cap:
        return SourceError(display, f"{record.rec_type} body over max_member_bytes={cap}", member=uri)
    if kind == "text/plain":
        try:
            return SourceDoc(uri, data.decode("utf-8-sig"), display, member=uri)
        except UnicodeDecodeError as err:
            return SourceError(display, f"not UTF-8 text: {err}", member=uri)
    try:
        return SourceDoc(uri, html_to_text(data), display, member=uri)
    except HTML_ERRORS as err:
        return SourceError(display, f"unparsable HTML: {err}", member=uri)
