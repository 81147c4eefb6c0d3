"""A target already past the requested stop point is refused, never reported complete (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

from binreplay.errors import ExitCode
from binreplay.source.reader import BinlogReader

from helpers import binlogs_from, replay_into, run_binreplay
from replays import BASE, ok, one_line_error, run_on, setup_backup, summary_of, users_on


def twenty_after_backup(clean_servers):
    """3 users backed up into the target, 20 more inserted on the source (one transaction each):
    (source, target, backup coordinates, binlog files, the 10th transaction after the backup)."""
    source, target = clean_servers
    start = setup_backup(source, target, *BASE)
    run_on(source, [f"INSERT INTO app.users (email, name, score) VALUES ('p{i}', 'x', {i})" for i in range(20)])
    files = binlogs_from(source, start[0])
    trxs = list(BinlogReader([Path(f) for f in files], start_pos=start[1]).transactions())
    return source, target, start, files, trxs[9]


def test_a_target_past_the_stop_point_is_refused(clean_servers) -> None:
    source, target, start, _files, tenth = twenty_after_backup(clean_servers)

    ok(replay_into(source, target, start))                      # everything: 3 + 20 users
    assert users_on(target) == 23

    # The same stop point as the replay that got there (none: the end) is complete, with nothing to do.
    again = replay_into(source, target, start)
    ok(again)
    assert summary_of(again)["applied"] == 0

    # An earlier stop point: the target holds 10 transactions after it, which no replay can undo.
    earlier = replay_into(source, target, start, "--stop-gtid", str(tenth.gtid), "--progress", "none")
    one_line_error(earlier, ExitCode.PAST_STOP, "past the requested stop point", "restore the backup again")
    assert users_on(target) == 23
    # The refused command changed nothing: the run it would have resumed is still the complete one.
    status = run_binreplay("status", *target.connection_flags(), "--format", "json")
    ok(status)
    assert json.loads(status.stdout)["state"] == "complete", status.stdout


def test_a_replay_stopped_at_a_point_can_be_extended_and_rerun_at_it(clean_servers) -> None:
    source, target, start, files, tenth = twenty_after_backup(clean_servers)

    def up_to_the_tenth():
        return run_binreplay("replay", *files[:tenth.file_index + 1], *target.connection_flags(), "--start-position",
                             str(start[1]), "--stop-position", str(tenth.end_pos), "--progress", "json")

    ok(up_to_the_tenth())
    assert users_on(target) == 13
    ok(up_to_the_tenth())                                                # rerun at the same point: nothing to do
    assert users_on(target) == 13
    ok(replay_into(source, target, start))                              # extended to the end
    assert users_on(target) == 23
