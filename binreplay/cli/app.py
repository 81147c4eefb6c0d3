"""The `binreplay` command group: logging, the process title, and the one place where an outcome
becomes an exit code (errors.ExitCode): every error ends in one line on stderr."""

from __future__ import annotations

import logging
import sys

import click
import pymysql

from binreplay import __version__
from binreplay.errors import BinreplayError, ExitCode, Interrupted, TargetError, advice, describe

log = logging.getLogger("binreplay")


def hide_password_from_process_list(argv: list[str]) -> None:
    """Rewrite the process title with any password masked, as the mysql client does, so it is
    not readable from `ps` or /proc/<pid>/cmdline while the replay runs."""
    masked, hide_next = [], False
    for arg in argv:
        if hide_next:
            masked.append("xxxxx")
            hide_next = False
        elif arg in ("-p", "--password") or (arg.startswith("--") and arg.endswith("-password")):
            masked.append(arg)
            hide_next = True
        elif arg.startswith("--") and "=" in arg and arg.split("=", 1)[0].endswith("password"):
            masked.append(arg.split("=", 1)[0] + "=xxxxx")
        elif arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            masked.append("-pxxxxx")
        else:
            masked.append(arg)
    if masked != argv:
        try:
            import setproctitle
        except ImportError:  # pragma: no cover - a declared dependency
            return
        setproctitle.setproctitle(" ".join(masked))


def setup_logging(verbose: int, quiet: bool) -> None:
    logging.basicConfig(level=logging.ERROR if quiet else logging.DEBUG if verbose > 1 else
                        logging.INFO if verbose else logging.WARNING,
                        format="binreplay: %(levelname)s: %(message)s", stream=sys.stderr)


class _CleanGroup(click.Group):
    def main(self, *args, **kwargs):  # type: ignore[override]
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo("binreplay: aborted", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        except click.ClickException as exc:
            exc.show()
            sys.exit(ExitCode.USAGE)
        except BinreplayError as exc:
            click.echo(f"binreplay: error: {exc}{advice(exc)}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            exc = Interrupted("interrupted")
            click.echo(f"binreplay: {exc}{advice(exc)}", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        except pymysql.err.MySQLError as exc:  # a server error no layer above turned into a BinreplayError
            error = TargetError(f"target: {describe(exc)}")
            click.echo(f"binreplay: error: {error}{advice(error)}", err=True)
            sys.exit(ExitCode.TARGET)
        except Exception as exc:  # noqa: BLE001 - a bug: the traceback for the report, then one line
            log.error("internal error (a bug: please report it with this output)", exc_info=exc)
            click.echo(f"binreplay: internal error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(ExitCode.INTERNAL)


@click.group(cls=_CleanGroup, context_settings={"help_option_names": ["--help"]})
@click.version_option(__version__, prog_name="binreplay")
def main() -> None:
    """Replay MySQL/MariaDB binary logs into a restored database, exactly and resumably."""
