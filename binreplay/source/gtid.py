"""GTID positions and sets: parsing, normalising, and the GTID bounds of a replay.

MariaDB: a GTID is domain-server-sequence and a *GTID list* (gtid_slave_pos,
START SLAVE UNTIL master_gtid_pos) holds at most one GTID per replication
domain. Positions compare by sequence number within a domain; the server id
identifies who wrote a transaction, not where it sits in the domain's order.

MySQL: a GTID is uuid[:tag]:number and a *GTID set* (gtid_executed,
--include-gtids) holds intervals of numbers per (uuid, tag).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Mapping

from binreplay.errors import UsageError
from binreplay.model import MariadbGtid, MysqlGtid

_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1
_MARIADB_GTID = re.compile(r"(\d+)-(\d+)-(\d+)")

# MySQL numbers GTIDs 1 .. 2^63-2 (GNO_END = INT64_MAX is exclusive).
_GNO_MAX = 2**63 - 2
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)
_TAG = re.compile(r"[a-z_][a-z0-9_]{0,31}", re.IGNORECASE)  # MySQL 8.3+ tagged GTIDs
_INTERVAL = re.compile(r"(\d+)(?:-(\d+))?")


def _one_line(text: str) -> str:
    """Collapse whitespace so values copied from SHOW output fit a one-line error message."""
    return " ".join(text.split())


# ---------------------------------------------------------------- MariaDB


def parse_mariadb_gtid(text: str) -> MariadbGtid:
    """Parse one MariaDB GTID such as ``0-1-100``."""
    part = text.strip()
    match = _MARIADB_GTID.fullmatch(part)
    if not match:
        raise UsageError(f"bad MariaDB GTID '{_one_line(part)}': expected domain-server-sequence, e.g. 0-1-100")
    domain, server, seq = (int(n) for n in match.groups())
    if domain > _UINT32_MAX or server > _UINT32_MAX or seq > _UINT64_MAX:
        raise UsageError(f"bad MariaDB GTID '{part}': a number is out of range")
    return MariadbGtid(domain, server, seq)


def parse_mariadb_gtid_list(text: str) -> dict[int, MariadbGtid]:
    """Parse a GTID list such as ``0-1-100,1-2-5`` into {domain_id: gtid}; '' gives {}."""
    gtids: dict[int, MariadbGtid] = {}
    if not text.strip():
        return gtids
    for part in text.split(","):
        if not part.strip():
            raise UsageError(f"empty element in MariaDB GTID list '{_one_line(text)}'")
        gtid = parse_mariadb_gtid(part)
        if gtid.domain_id in gtids:
            raise UsageError(
                f"MariaDB GTID list '{_one_line(text)}' has two GTIDs for domain {gtid.domain_id}"
                f" ({gtids[gtid.domain_id]} and {gtid}); give at most one per domain"
            )
        gtids[gtid.domain_id] = gtid
    return gtids


def format_mariadb_gtid_list(gtids: Mapping[int, MariadbGtid] | Collection[MariadbGtid]) -> str:
    """The canonical text of a GTID list, ordered by domain."""
    values = gtids.values() if isinstance(gtids, Mapping) else gtids
    return ",".join(str(g) for g in sorted(values, key=lambda g: g.domain_id))


class MariadbGtidBounds:
    """Which MariaDB transactions a replay applies, given start and stop GTID lists.

    start -- the position the restored backup *already contains*, like
        gtid_slave_pos: a transaction whose seq_no is <= the start seq_no of its
        domain is skipped. Domains the start list does not name are not skipped.
    stop -- inclusive, with the semantics of MariaDB's
        ``START SLAVE UNTIL master_gtid_pos`` (alias SQL_AFTER_GTIDS): in a listed
        domain, transactions up to and including the stop GTID are applied and
        later ones are not. Transactions of domains the stop list does not name
        are NOT applied at all, as MariaDB does not replicate them either. The
        replay is complete once every listed domain has reached its stop GTID
        (see `stop_reached` and `all_stops_reached`); a domain whose stop GTID the
        start position already contains counts as reached from the outset.

    None or an empty list means "no bound" on that side. All comparisons use
    seq_no within a domain, as MariaDB positions do; server_id is ignored.
    """

    def __init__(self, start: Mapping[int, MariadbGtid] | None, stop: Mapping[int, MariadbGtid] | None):
        self.start: dict[int, MariadbGtid] = dict(start or {})
        self.stop: dict[int, MariadbGtid] = dict(stop or {})
        self._reached_at_start = self._domains_reached_at_start()

    def _domains_reached_at_start(self) -> frozenset[int]:
        """Domains whose stop GTID the backup already contains; a stop before the start is an error."""
        reached: set[int] = set()
        for domain, stop in self.stop.items():
            start = self.start.get(domain)
            if start is None or stop.seq_no > start.seq_no:
                continue
            if stop.seq_no < start.seq_no:
                raise UsageError(
                    f"stop GTID {stop} is before the start position {start} of domain {domain}:"
                    " the backup already contains later transactions of that domain"
                )
            reached.add(domain)
        return frozenset(reached)

    @property
    def has_stop(self) -> bool:
        return bool(self.stop)

    def is_before_start(self, g: MariadbGtid) -> bool:
        """True if the backup already contains g (g is at or before its domain's start)."""
        start = self.start.get(g.domain_id)
        return start is not None and g.seq_no <= start.seq_no

    def is_after_stop(self, g: MariadbGtid) -> bool:
        """True if g must not be applied because it lies beyond the stop list."""
        if not self.stop:
            return False
        stop = self.stop.get(g.domain_id)
        return stop is None or g.seq_no > stop.seq_no

    def stop_reached(self, g: MariadbGtid) -> bool:
        """True if g is the stop GTID of its domain: that domain is complete after g."""
        stop = self.stop.get(g.domain_id)
        return stop is not None and g.seq_no == stop.seq_no

    def unreached_stops(self, reached_domains: Collection[int]) -> list[MariadbGtid]:
        """Stop GTIDs not reached yet, ordered by domain.

        `reached_domains` are the domains for which `stop_reached` returned True.
        After the last file, a non-empty result means the stop GTIDs were never
        seen in the binlogs, which the caller reports as bad input.
        """
        done = self._reached_at_start.union(reached_domains)
        return [self.stop[d] for d in sorted(self.stop) if d not in done]

    def all_stops_reached(self, reached_domains: Collection[int]) -> bool:
        """True when a stop list is given and every listed domain reached its stop GTID."""
        return self.has_stop and not self.unreached_stops(reached_domains)


# ---------------------------------------------------------------- MySQL

_Key = tuple[str, str | None]  # (uuid in canonical form, tag or None)


def _canonical_uuid(text: str) -> str:
    hexdigits = text.replace("-", "").lower()
    return f"{hexdigits[:8]}-{hexdigits[8:12]}-{hexdigits[12:16]}-{hexdigits[16:20]}-{hexdigits[20:]}"


class MysqlGtidSet:
    """A MySQL GTID set, e.g. ``3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,...``.

    Accepts the text SHOW MASTER STATUS, gtid_executed or mysqldump print:
    upper- or lower-case UUIDs (with or without dashes), whitespace and
    newlines around elements, overlapping intervals, and the tagged form of
    MySQL 8.4 (``uuid:tag:1-5`` and ``uuid:1-5:tag:1-3``). Used with mysqlbinlog's
    semantics for --include-gtids / --exclude-gtids. Anonymous GTIDs have no
    identity: they are never in a set and adding one does nothing.
    """

    def __init__(self, text: str = ""):
        # Per (uuid, tag): sorted, disjoint, non-adjacent inclusive intervals.
        self._intervals: dict[_Key, list[tuple[int, int]]] = {}
        for element in text.split(","):
            if element.strip():
                self._parse_element(element, text)

    def _parse_element(self, element: str, text: str) -> None:
        def bad(why: str) -> UsageError:
            where = f" in '{_one_line(text)}'" if element.strip() != text.strip() else ""
            return UsageError(f"bad MySQL GTID set element '{_one_line(element)}'{where}: {why}")

        tokens = [t.strip() for t in element.split(":")]
        if not _UUID.fullmatch(tokens[0]):
            raise bad(f"'{tokens[0]}' is not a UUID")
        uuid, tag, pending_tag = _canonical_uuid(tokens[0]), None, False
        if len(tokens) == 1:
            raise bad("a UUID needs at least one interval, e.g. uuid:1-5")
        for token in tokens[1:]:
            interval = _INTERVAL.fullmatch(token)
            if interval:
                first = int(interval.group(1))
                last = int(interval.group(2)) if interval.group(2) else first
                if not 1 <= first <= last <= _GNO_MAX:
                    raise bad(f"interval '{token}' must satisfy 1 <= start <= end <= {_GNO_MAX}")
                self._add_interval((uuid, tag), first, last)
                pending_tag = False
            elif _TAG.fullmatch(token):
                if pending_tag:
                    raise bad(f"tag '{tag}' has no interval")
                tag, pending_tag = token.lower(), True
            else:
                raise bad(f"'{token}' is neither an interval (n or n-m) nor a tag")
        if pending_tag:
            raise bad(f"tag '{tag}' has no interval")

    def _add_interval(self, key: _Key, first: int, last: int) -> None:
        intervals = self._intervals.setdefault(key, [])
        # Merge with every interval that overlaps or touches [first, last].
        lo = bisect.bisect_left(intervals, (first,)) - 1
        if lo < 0 or intervals[lo][1] < first - 1:
            lo += 1
        hi = lo
        while hi < len(intervals) and intervals[hi][0] <= last + 1:
            first, last = min(first, intervals[hi][0]), max(last, intervals[hi][1])
            hi += 1
        intervals[lo:hi] = [(first, last)]

    def add(self, g: MysqlGtid) -> None:
        """Add one GTID (anonymous GTIDs are ignored)."""
        if g.sid is not None:
            self._add_interval((_canonical_uuid(g.sid), g.tag.lower() if g.tag else None), g.gno, g.gno)

    def __contains__(self, g: object) -> bool:
        if not isinstance(g, MysqlGtid) or g.sid is None:
            return False
        intervals = self._intervals.get((_canonical_uuid(g.sid), g.tag.lower() if g.tag else None))
        if not intervals:
            return False
        i = bisect.bisect_right(intervals, (g.gno, _GNO_MAX + 1)) - 1
        return i >= 0 and intervals[i][0] <= g.gno <= intervals[i][1]

    @property
    def is_empty(self) -> bool:
        return not self._intervals

    def __bool__(self) -> bool:
        return not self.is_empty

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MysqlGtidSet) and self._intervals == other._intervals

    def __str__(self) -> str:
        """Normalised text: UUIDs sorted, untagged intervals first, then tags sorted."""
        elements = []
        for uuid in sorted({u for u, _ in self._intervals}):
            tags = sorted((t for u, t in self._intervals if u == uuid), key=lambda t: (t is not None, t or ""))
            parts = [uuid]
            for tag in tags:
                if tag is not None:
                    parts.append(tag)
                parts.extend(f"{a}-{b}" if a != b else str(a) for a, b in self._intervals[(uuid, tag)])
            elements.append(":".join(parts))
        return ",".join(elements)

    def __repr__(self) -> str:
        return f"MysqlGtidSet({str(self)!r})"
