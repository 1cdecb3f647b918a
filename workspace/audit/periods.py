"""The audit period and the period it is compared with, parsed from the command line's strings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from callqa.pipeline.types import CallQAError


class AuditError(CallQAError):
    """A bad audit-report input (a date, a comparison, a language) or a database it cannot read."""


@dataclass(frozen=True)
class Span:
    """Inclusive day range [since, until]."""

    since: date
    until: date

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def __str__(self) -> str:
        return f"{self.since.isoformat()}..{self.until.isoformat()}"


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise AuditError(None, f"{option}: {text!r} is not a date (YYYY-MM-DD)") from None


def parse_span(text: str, option: str) -> Span:
    """`YYYY-MM-DD..YYYY-MM-DD` (inclusive)."""
    first, sep, last = text.partition("..")
    if not sep:
        raise AuditError(None, f"{option}: {text!r} is not a range (YYYY-MM-DD..YYYY-MM-DD)")
    span = Span(parse_date(first, option), parse_date(last, option))
    if span.until < span.since:
        raise AuditError(None, f"{option}: the range {text!r} ends before it starts")
    return span


def resolve(
    since: str | None, until: str | None, compare: str | None, latest_day: date | None
) -> tuple[Span, Span | None]:
    """The audited span and the compared one.

    Without --from/--to the audit covers the 30 days ending on the latest call's day (an empty database:
    the 30 days ending today). `previous` compares with the span of the same length just before it.
    """
    end = parse_date(until, "--to") if until else (latest_day or date.today())
    start = parse_date(since, "--from") if since else end - timedelta(days=29)
    if end < start:
        raise AuditError(None, f"--to {end} is before --from {start}")
    span = Span(start, end)
    if compare is None or compare == "none":
        return span, None
    if compare == "previous":
        prev_end = start - timedelta(days=1)
        return span, Span(prev_end - timedelta(days=span.days - 1), prev_end)
    return span, parse_span(compare, "--compare")
