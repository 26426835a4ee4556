"""The `output=` log of `compare_strategies`: fingerprinted, verified before any write.

A log is a JSON-lines file: a header line (the configuration and a fingerprint of everything
that changes results), then one line per finished run. A file is only ever written to after
it has been verified as this configuration's log (or when it is new or empty); any other file
is refused and left byte-for-byte as it was. Each record is appended with one `write` on an
`O_APPEND` descriptor and synced, so a crash leaves whole lines plus at most one partial
last line; that damaged tail is moved aside to a sibling file (never deleted) on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._serial import content_hash, jsonable
from ..types import Model
from ._records import RunKey, RunRecord

LOG_FORMAT = "transferkit-comparison-log"
"""The header's `format` field: what identifies a file as a transferkit comparison log."""


def data_hashes(
    start: Model, data: dict[str, tuple[Any, Any] | None], data_id: str | None
) -> dict[str, Any]:
    """Content hashes of the starting weights and of each `(x, y)` array pair.

    A data set that is not an array pair (None in `data`) is identified by `data_id` only.
    """
    weights = [np.asarray(w) for w in start.get_weights()]
    hashes: dict[str, Any] = {"start_weights": content_hash(weights)}
    for name, pair in data.items():
        hashes[name] = None if pair is None else content_hash([np.asarray(p) for p in pair])
    hashes["data_id"] = data_id
    return hashes


def check_data_identity(non_arrays: Sequence[str], data_id: str | None, output: Any) -> None:
    """Refuse `output=` for data that cannot be fingerprinted, unless a `data_id` names it."""
    if data_id is not None and (not isinstance(data_id, str) or not data_id):
        raise ValueError(f"`data_id` must be a non-empty str or None. Received: {data_id!r}")
    if output is None or data_id is not None or not non_arrays:
        return
    raise ValueError(
        f"`output` needs data it can fingerprint, but {', '.join(f'`{n}`' for n in non_arrays)} "
        "is not an `(x, y)` pair of arrays (a tf.data pipeline, PyDataset or generator cannot "
        "be hashed), so a resumed run could silently mix results of different data. Pass "
        'NumPy arrays, or declare the data\'s identity with `data_id="..."` (change it '
        "whenever the data change)."
    )


def _diff(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """The dotted paths where two headers differ, with the file's value and the new one."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [(prefix, old, new)]
    out: list[tuple[str, Any, Any]] = []
    for key in dict.fromkeys([*new, *old]):
        if key in ("kind", "fingerprint") and not prefix:
            continue
        out += _diff(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _refusal(where: str, why: str) -> ValueError:
    return ValueError(
        f"{where} {why} It was not modified. Choose another path, or move the file away to "
        "start over."
    )


def _parse(raw: bytes, where: str) -> tuple[dict[str, Any], list[RunRecord], int]:
    """A log's header, its complete run records, and where its complete lines end."""
    good_end = raw.rfind(b"\n") + 1
    lines = raw[:good_end].splitlines()
    try:
        first = json.loads(lines[0]) if lines else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        first = None
    if not isinstance(first, dict) or first.get("kind") != "header":
        raise _refusal(where, "is not a transferkit comparison log (no transferkit header).")
    records = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if entry.get("kind") != "run":
                continue
            records.append(RunRecord.from_dict(entry, resumed=True))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _refusal(where, f"is damaged: line {n} is not a complete run record.") from None
    return first, records, good_end


class RunLog:
    """A comparison's `output=` file: verified on open, appended a whole record at a time."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header

    @classmethod
    def open(
        cls, output: str | os.PathLike[str], config: dict[str, Any], hashes: dict[str, Any]
    ) -> tuple[RunLog, dict[RunKey, RunRecord]]:
        """Verify (or create) the log before anything trains; return it and its finished runs."""
        path = Path(output)
        fields = json.loads(json.dumps({**jsonable(config), "hashes": hashes}, sort_keys=True))
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]
        header = {"kind": "header", "format": LOG_FORMAT, "fingerprint": digest, **fields}
        log = cls(path, header)
        if path.exists() and not path.is_file():
            raise ValueError(
                f"`output` {str(path)!r} exists but is not a regular file. Pass a file path, "
                f"e.g. {str(path / 'runs.jsonl')!r}."
            )
        if not path.parent.is_dir():
            raise ValueError(
                f"`output` {str(path)!r} is in a directory that does not exist "
                f"({str(path.parent)!r}). Create it first, or choose another path."
            )
        existed = path.exists()
        if existed and (raw := path.read_bytes()):
            return log, log._verify(raw)
        try:  # a new (or empty) file: writing the header now tests that the path is writable
            log._write(json.dumps(header).encode() + b"\n")
        except OSError as err:
            if not existed and path.exists():
                path.unlink()  # only the empty file this call created
            raise log._unwritable(err) from err
        return log, {}

    def _unwritable(self, err: OSError) -> ValueError:
        return ValueError(
            f"`output` file {str(self.path)!r} cannot be written ({err.strerror}), so finished "
            "runs could not be recorded. Make it writable or choose another path."
        )

    def _verify(self, raw: bytes) -> dict[RunKey, RunRecord]:
        first, records, good_end = _parse(raw, f"`output` file {str(self.path)!r}")
        if differ := _diff(first, self.header):
            shown = "; ".join(
                f"{k}: {_show(a)} in the file, {_show(b)} now" for k, a, b in differ[:4]
            )
            more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
            raise _refusal(
                f"`output` file {str(self.path)!r}",
                f"was written by a different configuration, so its runs cannot be mixed with "
                f"this comparison. Fields that differ: {shown}{more}.",
            )
        self._check_writable()
        if good_end < len(raw):
            self._set_aside(raw[good_end:], good_end)
        return {record.key: record for record in records}

    @staticmethod
    def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[RunRecord]]:
        """The header and finished runs of the log at `path`, read only (never modified).

        An interrupted last record is left out; a file that is not a transferkit log, or a
        damaged record before the last line, raises `ValueError`.
        """
        where = f"File {str(path)!r}"
        try:
            raw = Path(path).read_bytes()
        except OSError as err:
            raise ValueError(f"{where} cannot be read ({err.strerror}).") from err
        return _parse(raw, where)[:2]

    def _check_writable(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as err:
            raise self._unwritable(err) from err
        os.close(fd)

    def _set_aside(self, tail: bytes, good_end: int) -> None:
        """Move an interrupted last record into a sibling file, then cut it from the log."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{n}")
        with open(aside, "xb") as f:
            f.write(tail)
            f.flush()
            os.fsync(f.fileno())
        with open(self.path, "r+b") as f:
            f.truncate(good_end)
        warnings.warn(
            f"`output` file {str(self.path)!r} ended in an incomplete record ({len(tail)} bytes, "
            f"from an interrupted write). Those bytes were moved to {str(aside)!r}; the run "
            "they belonged to trains again.",
            UserWarning,
            stacklevel=5,  # the caller of `compare_strategies`
        )

    def _write(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while data:  # one write on O_APPEND is one whole line in all but short writes
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, record: RunRecord) -> None:
        """Append one finished run as one line."""
        try:
            self._write(json.dumps({"kind": "run", **record.to_dict()}).encode() + b"\n")
        except OSError as err:
            raise OSError(
                err.errno,
                f"Could not append run ({record.strategy!r}, seed {record.seed}) to `output` "
                f"file {str(self.path)!r}: {err.strerror}. Runs recorded before are kept; free "
                "space or fix permissions, then rerun with the same `output` to resume.",
            ) from err
