"""mitmproxy flow files (``.mitm``/``.flows``), every version mitmproxy can still read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from ..model import Exchange
from .convert import flow_to_exchange


def read_flowfile(path: Path, start_index: int, warnings: list[str]) -> Iterator[Exchange]:
    from mitmproxy import exceptions, io

    n = 0
    with open(path, "rb") as f:
        reader = io.FlowReader(f)
        it = iter(reader.stream())
        while True:
            try:
                flow = next(it)
            except StopIteration:
                return
            except (exceptions.FlowReadException, ValueError, KeyError, TypeError) as e:
                reason = str(e) or type(e).__name__
                if n == 0:
                    raise InputError(f"{path}: not a readable mitmproxy flow file: {reason}") from e
                warnings.append(
                    f"{path}: read {n} flows, then the file is damaged at byte {f.tell()} "
                    f"({reason}); the rest of the file was skipped"
                )
                return
            yield flow_to_exchange(flow, start_index + n, source=str(path))
            n += 1
