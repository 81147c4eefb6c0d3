"""Times as binreplay reads and shows them: the machine's local time zone, always with its offset.

`--start-datetime`/`--stop-datetime` without an offset mean local time, as mysqlbinlog reads
them (it uses the machine's time zone, `TZ` included). Every time binreplay shows (plan, the
progress bar, JSON lines, the summary, status) is that same local time with its UTC offset,
ISO 8601 style (`2026-12-08 09:54:10-05:00`), so a time copied from any of them into
`--stop-datetime` means the same instant, whatever zone the machine that reads it is in.
"""

from __future__ import annotations

import datetime as dt

from binreplay.errors import UsageError

_FORMAT = "%Y-%m-%d %H:%M:%S%z"


def parse_datetime(text: str, flag: str) -> int:
    """'YYYY-MM-DD HH:MM:SS' in the local time zone (as mysqlbinlog reads it), or with an offset
    (as binreplay shows times: '2026-12-08 09:54:10-05:00', 'Z' for UTC): seconds since the epoch."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{flag}: cannot parse {text!r} (expected 'YYYY-MM-DD HH:MM:SS', local time, "
                         "or with an offset: 'YYYY-MM-DD HH:MM:SS+HH:MM')") from None
    return int(value.timestamp())  # naive values are local time, like mysqlbinlog


def shown_time(ts: float) -> str:
    """An epoch time as binreplay shows it: local time with its offset ('2026-12-08 14:54:10+00:00')."""
    text = dt.datetime.fromtimestamp(ts, dt.UTC).astimezone().strftime(_FORMAT)
    return f"{text[:-2]}:{text[-2:]}"   # +0100 -> +01:00 (ISO 8601, what parse_datetime reads back)
