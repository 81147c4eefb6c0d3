"""TLS to the target: --ssl-mode with the mysql client's meanings, against a server that requires it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from binreplay.devtools.sandbox import create_sandbox
from binreplay.errors import ExitCode

from helpers import assert_same_content, binlogs_from, run_binreplay
from replays import BASE, run_on, setup_backup

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")


def _certificates(d: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=binreplay-test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server-key.pem",
            "-out", "server.csr")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "2", "-extfile", "san.cnf", "-out", "server.pem")
    return {name: d / f"{name}.pem" for name in ("ca", "server", "server-key")}


def test_replay_over_verified_tls(clean_servers, tmp_path: Path) -> None:
    source, _ = clean_servers
    certs = _certificates(tmp_path)
    options = {"ssl-ca": str(certs["ca"]), "ssl-cert": str(certs["server"]), "ssl-key": str(certs["server-key"]),
               "require-secure-transport": "ON"}
    with create_sandbox(tmp_path / "tls", name="tls", server_id=9, options=options, die_with_parent=True) as target:
        target.execute("CREATE USER 'remote'@'127.0.0.1' IDENTIFIED BY 'pw'")
        target.execute("GRANT ALL ON *.* TO 'remote'@'127.0.0.1'")
        start = setup_backup(source, target, *BASE)
        run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('tls{i}', 'x', {i})" for i in range(20)])
        files = binlogs_from(source, start[0])
        tcp = ["-h", "127.0.0.1", "-P", str(target.port), "-u", "remote", "--start-position", str(start[1]),
               "--progress", "none"]
        env = {"MYSQL_PWD": "pw"}
        refused = run_binreplay("replay", *files, *tcp, "--ssl-mode", "DISABLED", env=env)
        assert refused.returncode == ExitCode.TARGET, refused.stderr
        wrong_ca = run_binreplay("replay", *files, *tcp, "--ssl-mode", "VERIFY_CA", "--ssl-ca",
                                 str(certs["server"]), env=env)
        assert wrong_ca.returncode == ExitCode.TARGET, wrong_ca.stderr
        r = run_binreplay("replay", *files, *tcp, "--ssl-mode", "VERIFY_IDENTITY", "--ssl-ca", str(certs["ca"]),
                          env=env)
        assert r.returncode == 0, r.stderr
        assert_same_content(source, target)
        usage = run_binreplay("replay", *files, *tcp, "--ssl-mode", "VERIFY_CA", env=env)
        assert usage.returncode == ExitCode.USAGE and "--ssl-ca" in usage.stderr
