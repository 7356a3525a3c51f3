"""No model dir that holds a pickle is loaded: the check `ModelMeta.load` runs before anything reads a model dir.

Unpickling runs whatever code the file names, so a model dir from a shared MLflow store, a downloaded artifact
or a colleague's folder must not be able to smuggle one in, even under a name frontwire itself never reads
(a later library version, or a user's own code, might). Every file of the dir, in every subfolder, is judged by
its content, not its name: a pickle stream (any protocol), or a zip archive holding one (torch.save's format,
its `data.pkl`). Files named as pickles (`.pkl`, `.pickle`, `.joblib`) are refused whatever they hold.

The content check only disassembles (pickletools): it never imports or calls anything. Safetensors, JSON,
tokenizer vocabularies, ONNX graphs and Markdown fail that disassembly within their first bytes.
"""

from __future__ import annotations

import io
import os
import pickletools
import struct
import zipfile
from pathlib import Path

LEGACY_LEXICAL_FILE = "lexical.joblib"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
# Disassembling this much of a file decides: no text or binary format of a model dir stays a valid pickle
# stream this long, and a pickle that does is refused (it would be reading its own huge arguments).
_BUDGET = 256 * 1024
# Opcodes by which unpickling imports a callable (EXT*: through copyreg's registry), to call it with REDUCE, OBJ...
_IMPORTS = frozenset({"GLOBAL", "STACK_GLOBAL", "INST", "EXT1", "EXT2", "EXT4"})
_ZIP_MAGIC = b"PK\x03\x04"
# what pickletools raises on bytes that are no (valid) pickle: the file is not one
_UNDECODABLE = (ValueError, EOFError, OverflowError, struct.error)


class UnsafeModelFileError(ValueError):
    """A model dir holding a file that loading could execute (a pickle); the message names the file."""


class _OverBudget(Exception):
    pass


class _Capped(io.RawIOBase):
    """A file read only up to `_BUDGET` bytes; reading past that raises _OverBudget (a still-valid stream)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self.raw, self.position = raw, 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:  # genops reports positions through it
        return self.position

    def read(self, size: int = -1) -> bytes:
        if size < 0 or self.position + size > _BUDGET:
            raise _OverBudget
        data = self.raw.read(size)
        self.position += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = self.raw.readline(_BUDGET - self.position + 1)
        self.position += len(line)
        if self.position > _BUDGET:
            raise _OverBudget
        return line


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def _pickle_stream(raw: io.BufferedIOBase) -> str | None:
    """Why this stream is a pickle, or None when it is not one."""
    start = raw.tell()
    imported: str | None = None
    proto: int | None = None
    try:
        for opcode, arg, _ in pickletools.genops(_Capped(raw)):
            proto = arg if opcode.name == "PROTO" and proto is None else proto
            if imported is None and opcode.name in _IMPORTS:
                imported = f"{opcode.name} {arg}" if arg is not None else opcode.name
            if opcode.name == "STOP":
                break
    except _OverBudget:
        return f"pickle opcodes for its first {_BUDGET // 1024} KiB" + (f" ({imported})" if imported else "")
    except _UNDECODABLE:
        # Unpickling calls an imported callable as soon as it reaches it: a stream that imports one before it
        # breaks off is as dangerous as a complete one.
        return None if imported is None else f"pickle opcodes that import a callable ({imported})"
    if imported is not None:
        return f"a pickle that imports a callable ({imported})"
    # No import: a stream of data only. A whole file of it is still a pickle (refused: nothing in a model dir is
    # one); a "stream" that stops early inside a longer file is some other format (a safetensors header length
    # can read as MARK, STOP), and text like "Note." decodes as opcodes but its stack does not work out.
    if raw.read(1):
        return None
    raw.seek(start)
    try:
        pickletools.dis(_Capped(raw), out=_Discard())
    except (_OverBudget, *_UNDECODABLE):
        return None
    return f"a pickle (protocol {proto if proto is not None else '0/1'})"


def pickle_reason(path: Path) -> str | None:
    """Why the file at `path` is (or holds) a pickle; None for any other file."""
    with open(path, "rb") as raw:
        head = raw.read(len(_ZIP_MAGIC))
        raw.seek(0)
        if head == _ZIP_MAGIC:
            return _zip_reason(path)
        found = _pickle_stream(raw)  # type: ignore[arg-type]
    if found is None and path.name.lower().endswith(PICKLE_SUFFIXES):
        return f"a file named as a pickle ({path.suffix})"
    return found


def _zip_reason(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.filename.lower().endswith(PICKLE_SUFFIXES):
                    return f"a zip archive holding the pickle {member.filename} (torch.save's format)"
                with archive.open(member) as opened:
                    why = _pickle_stream(opened)  # type: ignore[arg-type]
                if why is not None:
                    return f"a zip archive holding {member.filename}, {why}"
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as err:
        return f"a zip archive that cannot be inspected ({err})"
    return None


def refuse_unsafe_files(model_dir: Path) -> None:
    """Raise UnsafeModelFileError naming the first file of `model_dir` (any depth) that is or holds a pickle."""
    root = Path(model_dir)
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            try:
                why = pickle_reason(path)
            except OSError as err:
                raise UnsafeModelFileError(f"{path}: unreadable model file ({err}); the model dir is not loaded") \
                    from err
            if why is None:
                continue
            relative = path.relative_to(root)
            if str(relative) == LEGACY_LEXICAL_FILE:
                raise UnsafeModelFileError(
                    f"{path}: refused, {why}: model dirs from before format 2 stored the TF-IDF blend as a pickle, "
                    "and unpickling runs code, so frontwire never loads it. Retrain the classifier (`frontwire "
                    "train classifier`), which stores the blend as JSON + safetensors (format 2), or delete "
                    f"{LEGACY_LEXICAL_FILE} and set lexical_weight to 0 in frontwire.json to serve the transformer "
                    "alone")
            raise UnsafeModelFileError(
                f"{path}: refused, {why}; loading a pickle can run code, and no file of a frontwire model dir "
                f"is one (weights are safetensors, settings JSON). Remove {relative} if the rest of {root} "
                "is to be trusted")
