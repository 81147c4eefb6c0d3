"""Connecting to the target server, and checking up front that it can take the replay."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import pymysql
from pymysql.constants import CLIENT

from binreplay.errors import (
    ER_ACCESS_DENIED,
    Fault,
    PrivilegeError,
    UsageError,
    classify,
    describe,
    error_code,
    first_line,
    server_error,
)
from binreplay.server.catalog import collations as load_collations  # noqa: F401 - re-export: run/coordinator.py


@dataclass(frozen=True)
class ServerConfig:
    host: str | None = None
    port: int = 3306
    user: str | None = None
    password: str | None = field(default=None, repr=False)   # never printed
    socket: str | None = None
    defaults_file: str | None = None
    connect_timeout: int = 10
    ssl_mode: str | None = None    # DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY (like the mysql client)
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None

    @property
    def where(self) -> str:
        if self.socket or not self.host or self.host == "localhost":
            return f"socket {self.socket or 'default'}"
        return f"{self.host}:{self.port}"

    def resolved(self) -> ServerConfig:
        """Fill gaps from --defaults-file ([client] and [mysql] groups) and MYSQL_PWD, like the mysql client."""
        cfg = self
        if self.defaults_file:
            path = Path(self.defaults_file)
            if not path.is_file():
                raise UsageError(f"--defaults-file not found: {path}")
            parser = configparser.ConfigParser(allow_no_value=True, strict=False, interpolation=None)
            try:
                parser.read(path)
            except configparser.Error as exc:
                raise UsageError(f"--defaults-file {path}: cannot parse: {exc.message.splitlines()[0]}") from None
            values: dict[str, str] = {}
            for group in ("client", "mysql", "client-server", "client-mariadb", "mariadb-client"):
                if parser.has_section(group):
                    values.update({k.replace("-", "_"): (v or "").strip("'\"") for k, v in parser.items(group)})
            cfg = replace(
                cfg,
                host=cfg.host or values.get("host"),
                port=cfg.port if cfg.port != 3306 else int(values.get("port", 3306)),
                user=cfg.user or values.get("user"),
                password=cfg.password if cfg.password is not None else values.get("password"),
                socket=cfg.socket or values.get("socket"),
            )
        if cfg.password is None and os.environ.get("MYSQL_PWD") is not None:
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
    return ServerInfo(str(version), flavor, bool(int(log_bin)), int(server_id))


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
