"""Telling input formats apart: compression by magic bytes, the inner format by extension, else by content."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from pathlib import Path
from typing import IO

DOCUMENT_SUFFIXES = (".txt", ".html", ".htm", ".json")


def _stream_errors() -> tuple[type[BaseException], ...]:
    # zlib.error is not an OSError: corrupt deflate data inside a gzip file or a zip member raises it
    errors: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error)
    try:
        import zstandard
    except ImportError:  # zstd input then fails at open, with its own message
        return errors
    return (*errors, zstandard.ZstdError)


# what a truncated or corrupt compressed stream raises, whichever codec reads it
STREAM_ERRORS = _stream_errors()
COMPRESSION_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
COMPRESSION_SUFFIX = {".gz": "gzip", ".tgz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}

def compression_of(head: bytes, name: str) -> str | None:
    for magic, kind in COMPRESSION_MAGIC:
        if head.startswith(magic):
            return kind
    return None if head else COMPRESSION_SUFFIX.get(Path(name).suffix.lower())


def decompress(stream: IO[bytes], kind: str | None) -> IO[bytes]:
    """A streaming, buffered reader of the decompressed bytes (peek() works on every kind)."""
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(stream, "rb")
    if kind == "xz":
        return lzma.LZMAFile(stream, "rb")
    if kind == "zstd":
        return io.BufferedReader(ZstdFrames(stream), buffer_size=2**20)
    return stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[arg-type]


def inner_name(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".tgz"):
        return lower[:-4] + ".tar"
    suffix = Path(lower).suffix
    return lower[: -len(suffix)] if suffix in COMPRESSION_SUFFIX else lower


def sniff_format(name: str, head: bytes) -> str:
    """The inner format of a (decompressed) stream: extension when it names one, else its first bytes."""
    for suffixes, kind in (((".jsonl", ".ndjson"), "jsonl"), ((".csv",), "csv"), ((".tar",), "tar"),
                           ((".warc", ".arc"), "warc"), ((".parquet",), "parquet"), ((".zip",), "zip")):
        if name.endswith(suffixes):
            return kind
    if name.endswith(DOCUMENT_SUFFIXES):
        return "document"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if looks_like_tar(head):
        return "tar"
    if head.startswith(b"WARC/"):
        return "warc"
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    return "document"



def looks_like_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


class ZstdFrames(io.RawIOBase):
    """Decompressed bytes of zstd frames written back to back (as `zstd -d` reads them).

    zstandard's own `stream_reader` ends quietly where a truncated file ends, mid-frame, so the documents in
    the cut-off part would vanish without an error row; this reader raises `EOFError` there instead, like
    gzip, bz2 and xz do. Compressed input is fed in small pieces because one piece can inflate a lot (200 MB
    of zeros compress to 6 kB): a 1 kB piece bounds what one call can produce to a few tens of MB.
    """

    PIECE = 1024

    def __init__(self, raw: IO[bytes]) -> None:
        import zstandard

        self._raw = raw
        self._new_frame = zstandard.ZstdDecompressor().decompressobj
        self._corrupt = zstandard.ZstdError
        self._frame = self._new_frame()
        self._in_frame = False
        self._out = memoryview(b"")
        self._error: Exception | None = None  # raised once what was decoded before it has been read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._out:
            if self._error is not None:
                raise self._error
            piece = self._raw.read(self.PIECE)
            if not piece:
                if self._in_frame:
                    raise EOFError("zstd stream ends inside a frame (truncated file)")
                return 0
            self._out = memoryview(self._decompress(piece))
        size = min(len(buffer), len(self._out))
        buffer[:size] = self._out[:size]
        self._out = self._out[size:]
        return size

    def _decompress(self, piece: bytes) -> bytes:
        produced = []
        while piece:
            self._in_frame = True
            try:
                produced.append(self._frame.decompress(piece))
            except self._corrupt as err:  # garbage after good frames: what they held is still read
                self._error = err
                break
            piece = b""
            if self._frame.eof:  # the frame is complete: what follows it starts the next one
                piece = self._frame.unused_data
                self._frame, self._in_frame = self._new_frame(), False
        return b"".join(produced)
