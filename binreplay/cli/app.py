"""The `binreplay` command group: logging, the process title, and the one place where an outcome
becomes an exit code (errors.ExitCode): every error ends in one line on stderr."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

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


# Command name -> the module of binreplay.cli that defines it (importing it registers it).
COMMAND_MODULES = {"replay": "replay", "plan": "plan", "status": "status", "verify": "verify", "fetch": "fetch",
                   "demo": "demo", "sandbox": "sandbox", "forget": "forget"}


class _CleanGroup(click.Group):
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"binreplay.cli.{COMMAND_MODULES[cmd_name]}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in COMMAND_MODULES.values():
            importlib.import_module(f"binreplay.cli.{module}")
        return super().list_commands(ctx)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """click's main, never standalone: every outcome ends here, as one line and an exit code."""
        from binreplay.cli.options import password_prompt_arguments

        try:
            args = password_prompt_arguments(list(sys.argv[1:] if args is None else args))
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
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
            stop = Interrupted("interrupted")
            click.echo(f"binreplay: {stop}{advice(stop)}", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        except pymysql.err.MySQLError as exc:  # a server error no layer above turned into a BinreplayError
            error = TargetError(f"target: {describe(exc)}")
            click.echo(f"binreplay: error: {error}{advice(error)}", err=True)
            sys.exit(ExitCode.TARGET)
        except Exception as exc:
            log.error("internal error (a bug: please report it with this output)", exc_info=exc)
            click.echo(f"binreplay: internal error: {type(exc).__name__}: {exc}", err=True)
            sys.exit(ExitCode.INTERNAL)


@click.group(cls=_CleanGroup, context_settings={"help_option_names": ["--help"]})
@click.version_option(__version__, prog_name="binreplay")
def main() -> None:
    """Replay MySQL/MariaDB binary logs into a restored database, exactly and resumably."""
