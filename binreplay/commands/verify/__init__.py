"""`binreplay verify`: does the target hold the same data as a reference server?

Table by table: the schema (tables on each side, their columns), then the rows, as checksums
over chunks of the primary key (or first NOT NULL unique key) walked on the reference. Both
servers compute the very same expression over the very same key range, so the result does not
depend on row format or storage (unlike CHECKSUM TABLE). A differing chunk is bisected down to
a small key range that the report names.

What is compared is content, byte for byte: 'a' and 'A' differ even in a _ci column, NULL and
'' differ, FLOAT is widened to DOUBLE (exact) and TIMESTAMPs are read in UTC. Compare quiescent
servers: rows written while verify runs show up as differences.

results.py     what verify is asked and what it finds
connections.py one connection per server and thread, both servers queried at once
catalog.py     what each server has (databases, tables, columns, keys), and where they differ
checksums.py   one table's chunked checksums, a differing chunk bisected to a key range
comparison.py  the whole run: databases, catalogs, then the tables' contents on N threads
report.py      text and JSON rendering
"""

from binreplay.commands.verify.comparison import verify
from binreplay.commands.verify.report import describe_range, human_report, json_report, verdict
from binreplay.commands.verify.results import KeyRange, TableResult, VerifyOptions, VerifyReport

__all__ = ["KeyRange", "TableResult", "VerifyOptions", "VerifyReport", "describe_range", "human_report",
           "json_report", "verdict", "verify"]
