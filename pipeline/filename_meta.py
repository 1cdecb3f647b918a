"""Call metadata from a recording's file name (settings `metadata.filename_pattern`).

Recorders often put the agent, the date, the direction or the queue in the file name, e.g. the AWS PCA
sample `Auto0_GUID_000_AGENT_ChrisL_DT_2025-02-19T06-01-22_Mono.wav`. A pattern is either

- a regular expression with named groups among `FIELDS`, searched in the file name (not anchored):
  `AGENT_(?P<agent_id>[^_]+)_DT_(?P<started_at>[0-9T-]+)`;
- or a template matched against the whole file name, `{field}` for a field, `{_}` for a part to skip,
  everything else literal: `{_}_{_}_{_}_AGENT_{agent_id}_DT_{started_at}_{_}.wav`.

Discovery applies it first; the manifest and the sidecar then win, field by field. The values are
untrusted like any metadata (they go through discover's validation, and a customer_id through the same
pseudonymisation as a sidecar's, in callqa.pipeline.redact.redact_sources).
"""

from __future__ import annotations

import re
from datetime import datetime

from callqa.pipeline.types import ConfigError

FIELDS = ("agent_id", "team", "queue", "started_at", "direction", "customer_id")
SETTING = "metadata.filename_pattern"
# Date-times as recorders write them in file names (":" is not allowed in Windows file names).
_DATE_FORMATS = (
    "%Y-%m-%dT%H-%M-%S",
    "%Y-%m-%d_%H-%M-%S",
    "%Y-%m-%d %H-%M-%S",
    "%Y%m%dT%H%M%S",
    "%Y%m%d_%H%M%S",
    "%Y%m%d-%H%M%S",
    "%Y%m%d%H%M%S",
    "%Y-%m-%d",
    "%Y%m%d",
)
_TEMPLATE_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression; ConfigError naming the setting when it is unusable."""
    if not pattern or not pattern.strip():
        raise ConfigError(SETTING, "the file-name pattern is empty")
    if "(?P<" not in pattern and _TEMPLATE_FIELD.search(pattern):
        regex = _template_regex(pattern)
    else:
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise ConfigError(SETTING, f"invalid regular expression {pattern!r}: {e}") from None
    unknown = sorted(set(regex.groupindex) - set(FIELDS))
    if unknown:
        raise ConfigError(SETTING, f"unknown field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    if not regex.groupindex:
        raise ConfigError(SETTING, f"pattern {pattern!r} names no field (known: {', '.join(FIELDS)})")
    return regex


def _template_regex(template: str) -> re.Pattern[str]:
    parts, pos, seen = ["^"], 0, set()
    for m in _TEMPLATE_FIELD.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        name = m.group(1)
        if name == "_":
            parts.append(".+?")
        elif name not in FIELDS:
            raise ConfigError(SETTING, f"unknown field {{{name}}} in template (known: {', '.join(FIELDS)}, _)")
        elif name in seen:
            raise ConfigError(SETTING, f"field {{{name}}} appears twice in the template")
        else:
            seen.add(name)
            parts.append(f"(?P<{name}>.+?)")
        pos = m.end()
    parts.append(re.escape(template[pos:]) + "$")
    return re.compile("".join(parts))


def parse_started_at(value: str) -> str:
    """An ISO 8601 date-time from a file-name date ("2025-02-19T06-01-22" -> "2025-02-19T06:01:22")."""
    v = value.strip()
    try:
        return datetime.fromisoformat(v).isoformat()
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(v, fmt).isoformat()
        except ValueError:
            continue
    raise ValueError(f"started_at {value!r} from the file name is not a date-time (e.g. 2025-02-19T06-01-22)")


def fields_from_name(file_name: str, regex: re.Pattern[str]) -> dict[str, str] | None:
    """The fields the file name gives (empty groups left out), or None when it does not match.

    Raises ValueError for a started_at that matched but is no date-time."""
    m = regex.search(file_name)
    if m is None:
        return None
    out = {k: v for k, v in m.groupdict().items() if v not in (None, "")}
    if "started_at" in out:
        out["started_at"] = parse_started_at(out["started_at"])
    return out
