"""The scheduler on its own: ordering, grouping, barriers, commit-order, and a randomized model check."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binreplay.schedule.dependencies import EVERYTHING, UNKEYED, KeyPayoff
from binreplay.schedule.scheduler import Scheduler, conflict


def X(*names):
    return {n: True for n in names}


def S(*names):
    return {n: False for n in names}


def test_independent_transactions_are_claimed_together_or_apart() -> None:
    s = Scheduler()
    for i in range(4):
        s.add(i, X(f"row{i}"))
    assert s.claim(max_count=2) == [0, 1]
    assert s.claim(max_count=2) == [2, 3]
    assert s.claim() == []
    s.finish([2, 3])
    assert s.low_water == 0
    s.finish([0, 1])
    assert s.low_water == 4 and s.idle()


def test_conflicting_transaction_waits_for_the_earlier_one() -> None:
    s = Scheduler()
    s.add(0, X("a"))
    s.add(1, X("a"))
    s.add(2, X("b"))
    assert s.claim(max_count=1) == [0]
    assert s.claim(max_count=5) == [2]       # 1 waits for 0, which another worker holds
    s.finish([0])
    assert s.claim(max_count=5) == [1]


def test_a_chain_on_a_hot_row_travels_in_one_group() -> None:
    s = Scheduler()
    for i in range(10):
        s.add(i, X("hot"))
    assert s.claim(max_count=100) == list(range(10))


def test_shared_keys_do_not_conflict_with_each_other() -> None:
    s = Scheduler()
    s.add(0, S("tbl"))
    s.add(1, S("tbl"))
    s.add(2, X("tbl"))
    s.add(3, S("tbl"))
    assert s.claim() == [0]
    assert s.claim() == [1]
    assert s.claim() == []                   # the exclusive one waits for both shared holders
    s.finish([0, 1])
    assert s.claim() == [2]
    assert s.claim() == []                   # and the later shared one waits for it
    s.finish([2])
    assert s.claim() == [3]


def test_barrier_runs_alone_and_only_on_the_allowed_worker() -> None:
    s = Scheduler()
    s.add(0, X("a"))
    s.add(1, barrier=True)
    s.add(2, X("b"))
    assert s.claim(max_count=10) == [0]      # nothing passes the barrier
    assert s.claim(max_count=10) == []
    s.finish([0])
    assert s.claim(max_count=10, allow_barrier=False) == []
    assert s.claim(max_count=10) == [1]
    assert s.claim(max_count=10) == []
    s.finish([1])
    assert s.claim(max_count=10) == [2]


def test_commit_order_after() -> None:
    s = Scheduler()
    s.add(0)
    s.add(1)
    s.add(2, after=2)                         # needs 0 and 1 finished (or grouped with it)
    assert s.claim() == [0]
    assert s.claim() == [1]
    assert s.claim() == []
    s.finish([0, 1])
    assert s.claim() == [2]
    t = Scheduler()
    t.add(0)
    t.add(1, after=1)
    assert t.claim(max_count=5) == [0, 1]     # grouped behind its predecessor


def test_group_bounds_by_bytes() -> None:
    s = Scheduler()
    for i in range(5):
        s.add(i, X(i), size=100)
    assert s.claim(max_count=10, max_bytes=250) == [0, 1]


def test_out_of_order_add_is_refused() -> None:
    s = Scheduler()
    s.add(5)
    with pytest.raises(ValueError):
        s.add(5)


def _conflict(a: dict, b: dict) -> bool:
    return any(k in b and (a[k] or b[k]) for k in a)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_model_no_conflicting_overlap_and_always_progress(data) -> None:
    """Random keys, random claimers, random finish order: the invariants of a safe scheduler."""
    n = data.draw(st.integers(1, 60))
    keysets = []
    barriers = []
    for _ in range(n):
        keys = data.draw(st.dictionaries(st.sampled_from("abcdefg"), st.booleans(), max_size=3))
        keysets.append(keys)
        barriers.append(data.draw(st.integers(0, 15)) == 0)
    s = Scheduler()
    for i in range(n):
        s.add(i, keysets[i], barrier=barriers[i])
    rnd = random.Random(data.draw(st.integers(0, 10 ** 6)))
    running: list[list[int]] = []
    done: set[int] = set()
    while len(done) < n:
        if running and rnd.random() < 0.5:
            group = running.pop(rnd.randrange(len(running)))
            s.finish(group)
            done.update(group)
            continue
        group = s.claim(max_count=rnd.randint(1, 5), allow_barrier=rnd.random() < 0.7 or not running)
        if not group:
            if not running:
                group = s.claim(max_count=5, allow_barrier=True)
                assert group, "nothing running and nothing claimable: the scheduler is stuck"
            else:
                continue
        assert group == sorted(group)
        in_flight = {t for g in running for t in g}
        for t in group:
            # every earlier conflicting transaction is finished or earlier in this group
            for e in range(t):
                conflicts = barriers[t] or barriers[e] or _conflict(keysets[t], keysets[e])
                if conflicts:
                    assert e in done or (e in group and group.index(e) < group.index(t)), (e, t)
            # and nothing running elsewhere conflicts with it
            for o in in_flight:
                assert not (barriers[t] or barriers[o] or _conflict(keysets[t], keysets[o])), (o, t)
            if barriers[t]:
                assert group == [t]
        running.append(group)
    assert s.idle() and s.low_water == n and s.tracked_keys() == 0


def test_contiguous_claims_never_overtake() -> None:
    """--preserve-commit-order: a group is a contiguous run; it stops at the first one not ready."""
    s = Scheduler()
    s.add(0, X("a"))
    s.add(1, X("a"))
    s.add(2, X("b"))
    assert s.claim(max_count=1) == [0]
    assert s.claim(max_count=5, contiguous=True) == []      # 1 waits for 0; 2 must not overtake it
    assert s.claim(max_count=5) == [2]                      # without the flag it may
    s.finish([0])
    assert s.claim(max_count=5, contiguous=True) == [1]


def test_conflict_is_the_scheduler_s_rule() -> None:
    assert conflict(X("a"), S("a")) and conflict(S("a"), X("a")) and conflict(X("a"), X("a", "b"))
    assert not conflict(S("a"), S("a")) and not conflict(X("a"), X("b")) and not conflict({}, X("a"))


def _batch_keys(*rows: int) -> dict:
    return {**S("tbl"), **X(*(f"row{r}" for r in rows)), EVERYTHING: False}


def test_row_keys_are_given_up_while_keyed_batches_keep_conflicting() -> None:
    payoff = KeyPayoff()
    # Batches that share a row with the one before: keys gain nothing, and are paused after GIVE_UP.
    payoff.submitted(_batch_keys(1, 2))
    for n in range(KeyPayoff.GIVE_UP):
        assert not payoff.paused
        payoff.submitted(_batch_keys(2 + n, 3 + n))
    assert payoff.paused
    for _ in range(KeyPayoff.PAUSE - 1):
        payoff.submitted(dict(UNKEYED))     # (the batches of the pause go unkeyed)
        assert payoff.paused
    payoff.submitted(dict(UNKEYED))
    assert not payoff.paused                # tried again


def test_row_keys_are_kept_while_they_let_batches_run_side_by_side() -> None:
    payoff = KeyPayoff()
    for n in range(4 * KeyPayoff.GIVE_UP):
        # Every other batch shares a row with the one before it, the others are apart from theirs;
        # unkeyed batches and batches without rows say nothing.
        payoff.submitted(_batch_keys(n // 2))
        payoff.submitted(dict(UNKEYED))
        payoff.submitted({})
        assert not payoff.paused
