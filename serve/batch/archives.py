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

from frontwire.serve.batch.formats import DOCUMENT_SUFFIXES
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
        except (tarfile.TarError, OSError, EOFError) as err:
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
            except (zipfile.BadZipFile, RuntimeError, OSError, EOFError, NotImplementedError) as err:
                yield SourceError(display, f"unreadable member ({type(err).__name__}: {err})", member=info.filename)
                continue
            if len(data) > cap:
                yield SourceError(display, f"member inflates past max_member_bytes={cap}", member=info.filename)
                continue
            yield from docs_from_bytes(info.filename, data, info.filename, display, options, info.filename)


def read_warc(stream: IO[bytes], display: str, options: ReadOptions) -> Iterator[Item]:
    """HTML responses of a WARC file. The document id is the target URI.

    Request, metadata and warcinfo records are crawl bookkeeping, not documents, and are passed over;
    a response that is not HTML (images, scripts) or is over the size cap becomes an error row.
    """
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    from frontwire.paragraphs import html_to_text

    cap = options.max_member_bytes
    try:
        for record in ArchiveIterator(stream, arc2warc=True):
            if record.rec_type != "response":
                continue
            uri = record.rec_headers.get_header("WARC-Target-URI") or record.rec_headers.get_header("WARC-Record-ID")
            content_type = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
            if not content_type.lower().startswith(HTML_TYPES):
                yield SourceError(display, f"response is not HTML (Content-Type {content_type!r})", member=uri)
                continue
            data = record.content_stream().read(cap + 1)
            if len(data) > cap:
                yield SourceError(display, f"response body over max_member_bytes={cap}", member=uri)
                continue
            try:
                text = html_to_text(data)
            except HTML_ERRORS as err:
                yield SourceError(display, f"unparsable HTML: {err}", member=uri)
                continue
            yield SourceDoc(uri, text, display, member=uri)
    except ArchiveLoadFailed as err:
        yield SourceError(display, f"not a readable WARC file: {err}")
