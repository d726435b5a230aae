"""How the ``venue`` command prints: readable tables for people, ``--json`` for scripts,
CSV for reports, and one-line errors (``error: ...`` on stderr, exit status 1)."""
from __future__ import annotations

import csv
import functools
import io
import json
import sys
from typing import Any, Callable, Sequence

import click

from venue.errors import VenueError


class Failure(click.ClickException):
    """A one-line error and exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def failing_cleanly(f: Callable) -> Callable:
    """Turn the venue's own errors (and bad values) into a one-line error and exit 1."""

    @functools.wraps(f)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return f(*a, **kw)
        except (VenueError, ValueError, OSError) as e:
            raise Failure(one_line(e)) from None

    return wrapper


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")(f)


def emit(data: Any, as_json: bool, columns: Sequence[str] | None = None, empty: str = "(none)") -> None:
    """Print ``data`` (a dict or a list of dicts) as JSON or as a table."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for k, v in data.items():
            click.echo(f"{k:<{width}}  {_cell(v)}")
        return
    rows = list(data or [])
    if not rows:
        click.echo(empty)
        return
    cols = list(columns or rows[0].keys())
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    numeric = [all(_is_number(row[i]) for row in cells) for i in range(len(cols))]
    click.echo("  ".join(c.upper().ljust(w) if not n else c.upper().rjust(w) for c, w, n in zip(cols, widths, numeric)))
    for row in cells:
        click.echo("  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(row, widths, numeric)).rstrip())


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return str(v)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return s == "-"


def write_csv(rows: list[dict[str, Any]], columns: Sequence[str], out: Any = None) -> None:
    w = csv.DictWriter(out or sys.stdout, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)


def csv_text(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    write_csv(rows, columns, buf)
    return buf.getvalue()
