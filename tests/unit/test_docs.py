"""The docs say what `--help` says: flags, exit codes and every command line shown in them (no server)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import click
import pytest

from binreplay.cli import main
from binreplay.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
_SHELL_SEPARATORS = {"|", "||", "&&", ";", "&", ">", ">>", "2>", "2>>", "<", "$(", "(", ")", "then", "do"}
_COMMAND_NAME = re.compile(r"[a-z][a-z-]*")


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_flags_doc", ROOT / "tools" / "gen_flags_doc.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


gen_flags_doc = _load_generator()


def commands() -> dict[str, click.Command]:
    """'replay', 'sandbox start', ... -> the click command."""
    root = click.Context(main, info_name="binreplay")
    return {ctx.command_path.removeprefix("binreplay "): cmd for cmd, ctx in gen_flags_doc.walk(main, root)}


def flags_of(cmd: click.Command) -> set[str]:
    names = {"--help"}
    for param in cmd.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def test_flags_doc_is_generated_from_the_commands() -> None:
    assert (DOCS / "flags.md").read_text() == gen_flags_doc.render(), \
        "docs/flags.md is out of date: run python tools/gen_flags_doc.py"


def test_every_option_is_in_the_flags_doc_with_its_help() -> None:
    text = (DOCS / "flags.md").read_text()
    root = click.Context(main, info_name="binreplay")
    for cmd, ctx in gen_flags_doc.walk(main, root):
        section = text.split(f"## `{ctx.command_path}`\n", 1)[1].split("\n## ", 1)[0]
        for param in cmd.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            for opt in param.opts + param.secondary_opts:
                assert opt in section, f"{ctx.command_path}: {opt} missing from docs/flags.md"
            if param.help:
                assert " ".join(param.help.split()).replace("|", "\\|") in section, \
                    f"{ctx.command_path} {param.opts[-1]}: help text differs in docs/flags.md"


def _exit_code_rows(markdown: str) -> set[int]:
    return {int(m) for m in re.findall(r"^\|\s*(\d+)\s*\|", markdown, flags=re.MULTILINE)}


def test_exit_code_names_are_the_enum_names() -> None:
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*`(\w+)`\s*\|", (DOCS / "exit-codes.md").read_text(), flags=re.MULTILINE)
    assert rows, "docs/exit-codes.md: no `| code | `NAME` |` rows"
    wrong = [(code, name) for code, name in rows if ExitCode(int(code)).name != name]
    assert not wrong, f"docs/exit-codes.md names differ from ExitCode: {wrong}"


def test_every_exit_code_is_documented_in_one_table() -> None:
    doc = "docs/exit-codes.md"
    documented = _exit_code_rows((ROOT / doc).read_text())
    missing = sorted(int(c) for c in ExitCode if int(c) not in documented)
    assert not missing, f"{doc}: exit codes {missing} missing from its table"
    assert documented <= {int(c) for c in ExitCode}, f"{doc} documents codes ExitCode does not have"
    readme = (ROOT / "README.md").read_text()
    assert not _exit_code_rows(readme), "README.md repeats the exit-code table: link to docs/exit-codes.md"
    assert "(docs/exit-codes.md)" in readme


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


def command_lines(block: str) -> list[list[str]]:
    """Each `binreplay ...` invocation in a shell block: its words, continuation lines joined.

    An invocation starts a line (after an optional `$ ` prompt) or follows a shell separator;
    mentions inside output lines ("stop:   binreplay sandbox stop ...", "binreplay status: the last
    run ...") are not invocations."""
    joined = re.sub(r"\\\n", " ", block)
    found = []
    for line in joined.splitlines():
        words = line.replace(";", " ; ").split()
        if words[:1] == ["$"]:
            words = words[1:]
        for i, word in enumerate(words):
            output_line = i + 1 < len(words) and words[i + 1].endswith(":")
            if word == "binreplay" and (i == 0 or words[i - 1] in _SHELL_SEPARATORS) and not output_line:
                found.append(words[i + 1:])
    return found


def check_invocation(words: list[str], known: dict[str, click.Command]) -> str | None:
    """None if the words name a real command and only its real flags; else what is wrong."""
    if not words or not _COMMAND_NAME.fullmatch(words[0]):
        return f"no command in: binreplay {' '.join(words)}"
    name = words[0]
    if name not in known and len(words) > 1 and f"{name} {words[1]}" in known:
        name = f"{name} {words[1]}"
    if name not in known:
        return f"unknown command: binreplay {name}"
    valid = flags_of(known[name])
    for word in words[1:]:
        if word in _SHELL_SEPARATORS or word.startswith("#"):  # the command (or its line) ends
            break
        if word.startswith("-") and word != "-" and not re.fullmatch(r"-\d+", word):
            flag = word.split("=", 1)[0]
            if flag not in valid:
                return f"binreplay {name}: no flag {flag}"
    return None


@pytest.mark.parametrize("doc", ["docs/runbook.md", "README.md", "docs/exit-codes.md"])
def test_commands_in_docs_use_real_flags(doc: str) -> None:
    known = commands()
    invocations = [w for block in code_blocks((ROOT / doc).read_text()) for w in command_lines(block)]
    assert invocations, f"{doc} shows no binreplay command"
    problems = [p for w in invocations if (p := check_invocation(w, known))]
    assert not problems, f"{doc}:\n" + "\n".join(problems)


def test_the_checker_catches_a_wrong_flag_and_a_wrong_command() -> None:
    known = commands()
    assert check_invocation(["replay", "f.index", "--stop-position", "5"], known) is None
    assert check_invocation(["sandbox", "start", "x", "--no-log-bin"], known) is None
    assert check_invocation(["replay", "f.index", "--stop-pos", "5"], known) == "binreplay replay: no flag --stop-pos"
    assert check_invocation(["replayy", "f"], known) == "unknown command: binreplay replayy"
    assert check_invocation(["status", "#", "then", "--nope"], known) is None  # a shell comment
    assert command_lines("binreplay replay a \\\n    --dry-run | tee x\n  stop:   binreplay nope\n"
                         "binreplay status: the last run did not finish\n") == \
        [["replay", "a", "--dry-run", "|", "tee", "x"]]


# --- the module map ------------------------------------------------------------------------

PACKAGE = ROOT / "binreplay"
_BACKTICKED = re.compile(r"`([^`]+)`")


def module_map(markdown: str) -> set[str]:
    """The modules and packages named in the first column of docs/design.md's module map:
    `apply/workers.py`, `apply/` (paths relative to binreplay/)."""
    section = markdown.split("\n## Module map\n", 1)[1].split("\n## ", 1)[0]
    named = set()
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        first = line.split("|")[1]
        named.update(t for t in _BACKTICKED.findall(first) if t.endswith((".py", "/")))
    return named


def package_layout(root: Path = PACKAGE) -> set[str]:
    """Every module (`x/y.py`) and package (`x/`) under binreplay/; a package's __init__.py is its package."""
    found = set()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts:
            continue
        if rel.name == "__init__.py":
            if rel.parent != Path("."):
                found.add(rel.parent.as_posix() + "/")
        else:
            found.add(rel.as_posix())
    return found


def test_the_module_map_names_every_module_and_only_modules_that_exist() -> None:
    mapped, actual = module_map((DOCS / "design.md").read_text()), package_layout()
    missing, stale = sorted(actual - mapped), sorted(mapped - actual)
    assert not missing, f"docs/design.md's module map lacks {missing}"
    assert not stale, f"docs/design.md's module map names what does not exist: {stale}"


def test_the_checker_catches_a_missing_and_a_stale_module(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    for name in ("top.py", "pkg/__init__.py", "pkg/mod.py"):
        (tmp_path / name).write_text("")
    assert package_layout(tmp_path) == {"top.py", "pkg/", "pkg/mod.py"}
    doc = ("# Design\n\n## Module map\n\n| module | role |\n|---|---|\n| `top.py`, `pkg/gone.py` | x `not/a.py` |\n"
           "| **`pkg/`** | y |\n\n## Next\n| `other.py` | z |\n")
    assert module_map(doc) == {"top.py", "pkg/gone.py", "pkg/"}


@pytest.mark.parametrize("doc", ["docs/design.md", "README.md"])
def test_source_files_named_in_the_docs_exist(doc: str) -> None:
    """A `something.py` in the prose is a path (relative to binreplay/ or to the repository) that exists."""
    named = {t for t in _BACKTICKED.findall((ROOT / doc).read_text()) if re.fullmatch(r"[\w./-]+\.py", t)}
    gone = sorted(t for t in named if not (PACKAGE / t).is_file() and not (ROOT / t).is_file())
    assert not gone, f"{doc} names files that do not exist: {gone}"


def test_there_is_one_module_map() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "| module | role |" not in readme, "README.md repeats the module map: link to docs/design.md"
    assert "(docs/design.md#module-map)" in readme
