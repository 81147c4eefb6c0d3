"""SQL text shared by everything that talks to a server: quoting, the server's own schemas, and
the values information_schema returns (bytes or str, depending on the column's charset)."""

from __future__ import annotations

from typing import Any

# Schemas that belong to the server itself: never user data, never replayed into or compared.
SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def text(value: Any) -> str:
    """An information_schema value as text."""
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)
