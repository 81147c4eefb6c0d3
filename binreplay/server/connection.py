"""Connecting to the target server, and checking up front that it can take the replay."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import pymysql
from pymysql.constants import CLIENT

from binreplay.errors import (
    CANNOT_CONNECT,
    ER_ACCESS_DENIED,
    Fault,
    PrivilegeError,
    TargetUnreachable,
    UsageError,
    classify,
    describe,
    error_code,
    first_line,
    server_error,
)
from binreplay.server.catalog import collations as load_collations  # noqa: F401 - re-export: run/coordinator.py
from binreplay.server.option_files import client_options, option_files


@dataclass(frozen=True)
class ServerConfig:
    host: str | None = None
    port: int = 3306
    user: str | None = None
    password: str | None = field(default=None, repr=False)   # never printed
    socket: str | None = None
    defaults_file: str | None = None
    defaults_extra_file: str | None = None
    # The target's: also the global option files, ~/.my.cnf and MYSQL_PWD (see `resolved`).
    user_defaults: bool = True
    connect_timeout: int = 10
    ssl_mode: str | None = None    # DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY (like the mysql client)
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    init_command: str | None = None   # run first on every connection (--target-binlog off: sql_log_bin=0)

    @property
    def where(self) -> str:
        if self.socket or not self.host or self.host == "localhost":
            return f"socket {self.socket or 'default'}"
        return f"{self.host}:{self.port}"

    def resolved(self) -> ServerConfig:
        """Fill gaps from option files and MYSQL_PWD, like the mysql client (server/option_files.py).
        The target also reads the global files, ~/.my.cnf and MYSQL_PWD; a second server (`--source-*`,
        `--reference-*`) only what its own flags name, never the target's password."""
        files = option_files(self.defaults_file, self.defaults_extra_file, user_files=self.user_defaults)
        values = client_options(files)
        host = self.host or values.get("host")
        try:
            port = self.port if self.port != 3306 else int(values.get("port") or 3306)
        except ValueError:
            raise UsageError(f"option file: port is not a number: {values.get('port')}") from None
        cfg = replace(
            self, host=host, port=port, user=self.user or values.get("user"),
            password=self.password if self.password is not None else values.get("password"),
            # The mysql client connects over TCP to a host other than localhost, whatever socket a file names.
            socket=self.socket or (values.get("socket") if not host or host == "localhost" else None),
        )
        if cfg.password is None and self.user_defaults and os.environ.get("MYSQL_PWD") is not None:
            cfg = replace(cfg, password=os.environ["MYSQL_PWD"])
        return cfg


def connect(cfg: ServerConfig, *, role: str = "target", multi_statements: bool = True,
            found_rows: bool = False) -> pymysql.connections.Connection:
    """`role` names the server in errors ("target", "source", "reference"), which are a SourceError
    for the source and a TargetError otherwise. `found_rows`: an UPDATE's affected-row count is the
    rows it matched, not those it changed."""
    kwargs: dict = dict(
        user=cfg.user or os.environ.get("USER") or "root",
        password=cfg.password or "",
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=cfg.connect_timeout,
        client_flag=(CLIENT.MULTI_STATEMENTS if multi_statements else 0) | (CLIENT.FOUND_ROWS if found_rows else 0),
        local_infile=False,
        init_command=cfg.init_command,
    )
    on_socket = bool(cfg.socket or not cfg.host or cfg.host == "localhost")
    if on_socket:
        kwargs["unix_socket"] = cfg.socket or "/run/mysqld/mysqld.sock"
    else:
        kwargs["host"] = cfg.host
        kwargs["port"] = cfg.port
    kwargs.update(tls_options(cfg, on_socket))
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.OperationalError as exc:
        error = server_error(role)
        if error_code(exc) == ER_ACCESS_DENIED:
            raise error(f"{role} {cfg.where}: access denied for user '{kwargs['user']}' "
                        "(wrong user or password)") from None
        if role != "source" and (error_code(exc) in CANNOT_CONNECT or classify(exc) is Fault.LOST):
            error = TargetUnreachable   # not there (yet): a run waits for it (server/reconnect.py)
        raise error(f"cannot connect to {role} {cfg.where}: {first_line(exc)}") from None


SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")


def tls_options(cfg: ServerConfig, on_socket: bool) -> dict:
    """pymysql options for --ssl-mode with the mysql client's meanings.

    Default: PREFERRED over TCP; DISABLED on a Unix socket (nothing to protect, and pymysql
    would build a TLS context per connection: 16 ms each)."""
    mode = (cfg.ssl_mode or ("DISABLED" if on_socket else "PREFERRED")).upper()
    if mode not in SSL_MODES:
        raise UsageError(f"--ssl-mode must be one of {', '.join(SSL_MODES)}")
    if mode == "DISABLED":
        return {"ssl_disabled": True}
    if mode == "PREFERRED" and not (cfg.ssl_ca or cfg.ssl_cert):
        return {}
    if mode in ("VERIFY_CA", "VERIFY_IDENTITY") and not cfg.ssl_ca:
        raise UsageError(f"--ssl-mode {mode} needs --ssl-ca")
    ssl: dict = {"verify_mode": mode in ("VERIFY_CA", "VERIFY_IDENTITY"),
                 "check_hostname": mode == "VERIFY_IDENTITY"}
    for key, value in (("ca", cfg.ssl_ca), ("cert", cfg.ssl_cert), ("key", cfg.ssl_key)):
        if value:
            if not Path(value).is_file():
                raise UsageError(f"--ssl-{key} file not found: {value}")
            ssl[key] = value
    return {"ssl": ssl}


@dataclass(frozen=True)
class ServerInfo:
    version: str
    flavor: str            # "mariadb" or "mysql"
    log_bin: bool
    server_id: int
    server_uuid: str | None = None   # MySQL only (its GTIDs name servers by it)

    @property
    def binlog_replay_privilege(self) -> str:
        return "BINLOG REPLAY (or SUPER)" if self.flavor == "mariadb" else "BINLOG_ADMIN (or SUPER)"


def server_info(conn: pymysql.connections.Connection) -> ServerInfo:
    with conn.cursor() as cur:
        cur.execute("SELECT @@version, @@log_bin, @@server_id")
        row = cur.fetchone()
    assert row is not None, "a SELECT without FROM returns a row"
    version, log_bin, server_id = row
    flavor = "mariadb" if "mariadb" in str(version).lower() else "mysql"
    uuid = None
    if flavor == "mysql":
        with conn.cursor() as cur:
            cur.execute("SELECT @@server_uuid")
            uuid = str(cur.fetchone()[0])  # type: ignore[index]
    return ServerInfo(str(version), flavor, bool(int(log_bin)), int(server_id), uuid)


def max_allowed_packet(conn: pymysql.connections.Connection) -> int:
    """The largest packet (statement) the server takes from this session; it drops the connection on a larger one."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@session.max_allowed_packet")
        row = cur.fetchone()
    assert row is not None, "a SELECT without FROM returns a row"
    return int(row[0])


def check_privilege(conn: pymysql.connections.Connection, sql: str | bytes, what: str) -> None:
    """Run a harmless statement that needs a privilege; turn 'access denied' into a clear error."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)  # type: ignore[arg-type]  # pymysql sends bytes as they are; its stubs say str
            while cur.nextset():
                pass
    except pymysql.err.MySQLError as exc:
        if classify(exc) is Fault.PRIVILEGE:
            raise PrivilegeError(f"the target user lacks {what}: {first_line(exc)}") from None
        raise server_error("target")(f"target check failed ({what}): {describe(exc)}") from None


TRANSACTIONAL_ENGINES = frozenset({"InnoDB", "TokuDB", "RocksDB", "NDBCLUSTER", "ndbcluster", "SEQUENCE"})
