"""The progress schema's tables (what each holds: state/store.py's docstring), created on the target."""

from __future__ import annotations

import re

from binreplay.server.sql import quote_ident


def schema_ddl(schema: str) -> list[str]:
    s = quote_ident(schema)
    return [
        f"CREATE DATABASE IF NOT EXISTS {s}",
        f"""CREATE TABLE IF NOT EXISTS {s}.runs (
            run_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
            fingerprint CHAR(64) NOT NULL,
            arguments LONGTEXT NOT NULL,
            binlog_files LONGTEXT NOT NULL,
            state VARCHAR(16) NOT NULL,
            started_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            finished_at TIMESTAMP(6) NULL,
            host VARCHAR(255) NOT NULL DEFAULT '',
            pid INT UNSIGNED NOT NULL DEFAULT 0,
            last_error TEXT NULL
        ) ENGINE=InnoDB""",
        f"""CREATE TABLE IF NOT EXISTS {s}.applied (
            run_id BIGINT UNSIGNED NOT NULL,
            file_index INT UNSIGNED NOT NULL,
            end_pos BIGINT UNSIGNED NOT NULL,
            binlog_file VARCHAR(255) NOT NULL,
            start_pos BIGINT UNSIGNED NOT NULL,
            transactions INT UNSIGNED NOT NULL DEFAULT 1,
            gtid VARCHAR(160) NULL,
            temporary_open VARCHAR(600) NULL,
            applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (run_id, file_index, end_pos)
        ) ENGINE=InnoDB""",
        f"""CREATE TABLE IF NOT EXISTS {s}.checkpoint (
            run_id BIGINT UNSIGNED NOT NULL,
            file_index INT UNSIGNED NOT NULL,
            pos BIGINT UNSIGNED NOT NULL,
            binlog_file VARCHAR(255) NOT NULL,
            transactions BIGINT UNSIGNED NOT NULL,
            temporary_open VARCHAR(600) NULL,
            written_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (run_id, file_index, pos)
        ) ENGINE=InnoDB""",
        f"""CREATE TABLE IF NOT EXISTS {s}.ddl_journal (
            run_id BIGINT UNSIGNED NOT NULL,
            file_index INT UNSIGNED NOT NULL,
            end_pos BIGINT UNSIGNED NOT NULL,
            binlog_file VARCHAR(255) NOT NULL,
            state VARCHAR(16) NOT NULL,
            schema_before CHAR(40) NOT NULL,
            statement LONGBLOB NOT NULL,
            connection_id BIGINT UNSIGNED NULL,
            unreadable VARCHAR(255) NULL,
            started_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
            PRIMARY KEY (run_id, file_index, end_pos)
        ) ENGINE=InnoDB""",
    ]


# Every table of the progress schema: those _schema_ddl creates.
PROGRESS_TABLES = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS `s`\.(\w+)", "\n".join(schema_ddl("s"))))
