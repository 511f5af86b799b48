"""Plain-text tables and JSON for evaluation results (used by the CLI and the benchmarks).

``format_table(rows, columns)``: ``columns`` is a sequence of keys, or of ``(key, header)`` pairs.
Numbers are right-aligned, everything else left-aligned; floats use ``float_format`` (default
``"{:.4f}"``), ``nan``/``inf`` print as ``nan``/``inf``/``-inf``, ``None`` and missing keys as ``-``.

``summaries_to_json(summaries)``: strict JSON (``nan``/``inf`` become ``null``) of a mapping, possibly
nested, whose leaves are ``Summary``/``WilcoxonResult``/``ImageMetrics`` dataclasses or plain values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from core.evaluation.summary import Summary

MISSING = "-"
COLUMN_GAP = "  "


def _cell(value: Any, float_format: str) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "f"):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float_format.format(value)
    return str(value)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf"


def format_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str | tuple[str, str]],
    float_format: str = "{:.4f}",
) -> str:
    """An aligned plain-text table: header line, dashed rule, one line per row (no trailing spaces)."""
    keys: list[str] = []
    headers: list[str] = []
    for column in columns:
        if isinstance(column, str):
            keys.append(column)
            headers.append(column)
        else:
            key, header = column
            keys.append(key)
            headers.append(header)
    cells = [[_cell(row.get(key), float_format) for key in keys] for row in rows]
    numeric = [
        any(_is_number(row.get(key)) for row in rows)
        and all(row.get(key) is None or _is_number(row.get(key)) for row in rows)
        for key in keys
    ]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return COLUMN_GAP.join(parts).rstrip()

    out = [line(headers), COLUMN_GAP.join("-" * w for w in widths)]
    out.extend(line(values) for values in cells)
    return "\n".join(out)


def summary_rows(summaries: Mapping[str, Summary], name_key: str = "metric") -> list[dict[str, Any]]:
    """``{name: Summary}`` -> rows for ``format_table`` (one row per name, Summary fields as columns)."""
    return [{name_key: name, **summary.as_dict()} for name, summary in summaries.items()]


SUMMARY_COLUMNS: tuple[str, ...] = ("n", "mean", "std", "median", "ci95_low", "ci95_high", "n_excluded")


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalars and arrays
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summaries_to_json(summaries: Mapping[str, Any], indent: int | None = 2) -> str:
    """Strict JSON of a (nested) mapping of summaries/results; non-finite floats become ``null``."""
    return json.dumps(_jsonable(summaries), indent=indent, allow_nan=False, sort_keys=False)
