"""binreplay: exact, resumable, parallel replay of MySQL/MariaDB binary logs."""

__version__ = "0.1.0"
