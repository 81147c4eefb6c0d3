import pytest

from binreplay.errors import UsageError
from binreplay.model import MariadbGtid, MysqlGtid
from binreplay.source.gtid import (
    MariadbGtidBounds,
    MysqlGtidSet,
    format_mariadb_gtid_list,
    parse_mariadb_gtid,
    parse_mariadb_gtid_list,
)

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "8a94f357-aab4-11df-86ab-c80aa9429562"


def g(text: str) -> MariadbGtid:
    return parse_mariadb_gtid(text)


def mg(gno: int, sid: str = U1, tag: str | None = None) -> MysqlGtid:
    return MysqlGtid(sid, gno, tag)


# ---------------------------------------------------------------- MariaDB parsing


def test_parse_mariadb_list():
    assert parse_mariadb_gtid_list("0-1-100,1-2-5") == {0: MariadbGtid(0, 1, 100), 1: MariadbGtid(1, 2, 5)}


def test_parse_mariadb_list_tolerates_whitespace_and_newlines():
    assert parse_mariadb_gtid_list("  0-1-100 ,\n 1-2-5\n") == {0: g("0-1-100"), 1: g("1-2-5")}


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_parse_mariadb_empty_list(text):
    assert parse_mariadb_gtid_list(text) == {}


def test_parse_mariadb_extremes():
    assert parse_mariadb_gtid_list(f"{2**32 - 1}-{2**32 - 1}-{2**64 - 1}") == {
        2**32 - 1: MariadbGtid(2**32 - 1, 2**32 - 1, 2**64 - 1)
    }
    assert parse_mariadb_gtid("0-1-0") == MariadbGtid(0, 1, 0)


@pytest.mark.parametrize(
    "text, named",
    [
        ("0-1", "'0-1'"),
        ("0-1-x", "'0-1-x'"),
        ("0-1-100,abc", "'abc'"),
        ("-1-2-3", "'-1-2-3'"),
        ("0-1-2-3", "'0-1-2-3'"),
        ("0-1-100,,1-2-5", "empty element"),
        ("0-1-100,", "empty element"),
        (f"{2**32}-1-1", "out of range"),
        (f"0-1-{2**64}", "out of range"),
        ("0-1-100,0-2-200", "domain 0"),
        ("uuid:1-5", "'uuid:1-5'"),
    ],
)
def test_parse_mariadb_errors_name_the_bad_part(text, named):
    with pytest.raises(UsageError) as exc:
        parse_mariadb_gtid_list(text)
    message = str(exc.value)
    assert named in message
    assert "\n" not in message


def test_format_mariadb_list_sorts_by_domain():
    gtids = parse_mariadb_gtid_list("2-1-7,0-1-100,1-2-5")
    assert format_mariadb_gtid_list(gtids) == "0-1-100,1-2-5,2-1-7"
    assert format_mariadb_gtid_list(list(gtids.values())) == "0-1-100,1-2-5,2-1-7"
    assert format_mariadb_gtid_list({}) == ""


# ---------------------------------------------------------------- MariaDB bounds


def test_no_bounds_applies_everything():
    bounds = MariadbGtidBounds(None, None)
    assert not bounds.is_before_start(g("0-1-1"))
    assert not bounds.is_after_stop(g("7-1-99999"))
    assert not bounds.has_stop
    assert not bounds.all_stops_reached(set())
    assert bounds.unreached_stops(set()) == []


def test_start_is_the_state_already_in_the_backup():
    bounds = MariadbGtidBounds(parse_mariadb_gtid_list("0-1-100,1-2-5"), None)
    assert bounds.is_before_start(g("0-1-99"))
    assert bounds.is_before_start(g("0-1-100"))        # contained in the backup
    assert not bounds.is_before_start(g("0-1-101"))
    assert bounds.is_before_start(g("1-2-5"))
    assert not bounds.is_before_start(g("1-2-6"))
    assert not bounds.is_before_start(g("2-1-1"))      # domain unknown to the backup: applied
    assert bounds.is_before_start(g("0-7-100"))        # positions compare seq_no, not server_id


def test_stop_is_inclusive():
    bounds = MariadbGtidBounds(None, parse_mariadb_gtid_list("0-1-500"))
    assert not bounds.is_after_stop(g("0-1-499"))
    assert not bounds.is_after_stop(g("0-1-500"))
    assert bounds.is_after_stop(g("0-1-501"))


def test_unlisted_domains_are_not_applied_when_a_stop_list_is_given():
    bounds = MariadbGtidBounds(None, parse_mariadb_gtid_list("0-1-500"))
    assert bounds.is_after_stop(g("1-1-1"))
    assert not bounds.stop_reached(g("1-1-1"))


def test_stop_reached_per_domain_until_all_are():
    bounds = MariadbGtidBounds(None, parse_mariadb_gtid_list("0-1-500,1-2-20"))
    reached: set[int] = set()
    for text in ["0-1-499", "1-2-19", "0-1-500", "1-2-20"]:
        gtid = g(text)
        assert not bounds.is_after_stop(gtid)
        assert not bounds.all_stops_reached(reached)
        if bounds.stop_reached(gtid):
            reached.add(gtid.domain_id)
    assert reached == {0, 1}
    assert bounds.all_stops_reached(reached)
    assert bounds.unreached_stops(reached) == []


def test_unreached_stop_is_reported():
    bounds = MariadbGtidBounds(None, parse_mariadb_gtid_list("0-1-500,1-2-20"))
    # seq 500 skipped in the binlogs: 499 then 501
    assert not bounds.stop_reached(g("0-1-499"))
    assert bounds.is_after_stop(g("0-1-501"))
    assert bounds.unreached_stops({1}) == [g("0-1-500")]
    assert format_mariadb_gtid_list(bounds.unreached_stops(set())) == "0-1-500,1-2-20"


def test_start_and_stop_together():
    bounds = MariadbGtidBounds(parse_mariadb_gtid_list("0-1-100"), parse_mariadb_gtid_list("0-1-200"))
    applied = [s for s in range(95, 206) if not bounds.is_before_start(g(f"0-1-{s}"))
               and not bounds.is_after_stop(g(f"0-1-{s}"))]
    assert applied == list(range(101, 201))


def test_stop_equal_to_start_is_reached_from_the_outset():
    bounds = MariadbGtidBounds(parse_mariadb_gtid_list("0-1-100,1-1-7"), parse_mariadb_gtid_list("0-1-100,1-1-9"))
    assert bounds.unreached_stops(set()) == [g("1-1-9")]
    assert bounds.all_stops_reached({1})


def test_stop_before_start_is_a_usage_error():
    with pytest.raises(UsageError, match="0-1-50.*0-1-100"):
        MariadbGtidBounds(parse_mariadb_gtid_list("0-1-100"), parse_mariadb_gtid_list("0-1-50"))


def test_empty_stop_list_means_no_stop():
    bounds = MariadbGtidBounds({}, {})
    assert not bounds.is_after_stop(g("3-3-3"))
    assert not bounds.has_stop


# ---------------------------------------------------------------- MySQL sets


def test_parse_and_contains():
    s = MysqlGtidSet(f"{U1}:1-5:7,{U2}:1-10")
    assert all(mg(n) in s for n in (1, 3, 5, 7))
    assert all(mg(n) not in s for n in (6, 8, 0))
    assert mg(10, U2) in s and mg(11, U2) not in s
    assert mg(1, "00000000-0000-0000-0000-000000000001") not in s


def test_normalised_text_merges_and_sorts():
    s = MysqlGtidSet(f"{U2}:1-10,{U1}:7:1-3:4-5:9-12:8,{U1}:20")
    assert str(s) == f"{U1}:1-5:7-12:20,{U2}:1-10"


def test_overlapping_and_contained_intervals_merge():
    assert str(MysqlGtidSet(f"{U1}:5-10:1-20:3")) == f"{U1}:1-20"
    assert str(MysqlGtidSet(f"{U1}:1-3:5-6:4")) == f"{U1}:1-6"
    assert str(MysqlGtidSet(f"{U1}:10-12:1-2:5")) == f"{U1}:1-2:5:10-12"


def test_gtid_executed_as_printed_by_the_server():
    text = f"{U1.upper()}:1-5,\n{U2}:1-3:11:47-49,\n"   # SHOW MASTER STATUS puts \n after each comma
    s = MysqlGtidSet(text)
    assert str(s) == f"{U1}:1-5,{U2}:1-3:11:47-49"
    assert mg(4, U1.upper()) in s


def test_whitespace_around_tokens_and_uuid_without_dashes():
    s = MysqlGtidSet(f"  {U1.replace('-', '')} : 1-5 : 9 ")
    assert str(s) == f"{U1}:1-5:9"


def test_tagged_gtids():
    s = MysqlGtidSet(f"{U1}:1-5:Tag_B:1-3:tag_a:7,{U1}:tag_b:4")
    assert str(s) == f"{U1}:1-5:tag_a:7:tag_b:1-4"
    assert mg(2, U1, "tag_b") in s
    assert mg(2, U1, "TAG_B") in s
    assert mg(7, U1, "tag_a") in s
    assert mg(7, U1) not in s                 # untagged 7 is a different GTID
    assert mg(6, U1, "tag_a") not in s


def test_tag_only_element():
    s = MysqlGtidSet(f"{U1}:tag1:1-5")
    assert str(s) == f"{U1}:tag1:1-5"
    assert mg(3, U1) not in s


def test_empty_set():
    for text in ["", "  \n", ","]:
        s = MysqlGtidSet(text)
        assert s.is_empty and not s and str(s) == ""
    assert mg(1) not in MysqlGtidSet()


def test_anonymous_gtids_are_never_in_a_set():
    s = MysqlGtidSet(f"{U1}:1-100")
    anonymous = MysqlGtid(None, 5)
    assert anonymous not in s
    s.add(anonymous)
    assert str(s) == f"{U1}:1-100"
    assert "not a gtid" not in s


def test_add_merges():
    s = MysqlGtidSet()
    for n in (3, 1, 2, 7, 5):
        s.add(mg(n))
    s.add(mg(1, U2, "Blue"))
    assert str(s) == f"{U1}:1-3:5:7,{U2}:blue:1"
    s.add(mg(4))
    s.add(mg(6))
    assert str(s) == f"{U1}:1-7,{U2}:blue:1"
    assert not s.is_empty


def test_equality():
    assert MysqlGtidSet(f"{U1}:1-3") == MysqlGtidSet(f"{U1.upper()}:1:2:3")
    assert MysqlGtidSet(f"{U1}:1-3") != MysqlGtidSet(f"{U1}:1-4")


def test_largest_gno():
    s = MysqlGtidSet(f"{U1}:{2**63 - 2}")
    assert mg(2**63 - 2) in s


@pytest.mark.parametrize(
    "text, named",
    [
        ("not-a-uuid:1-5", "'not-a-uuid'"),
        (f"{U1}", "at least one interval"),
        (f"{U1}:5-3", "'5-3'"),
        (f"{U1}:0", "'0'"),
        (f"{U1}:1-{2**63 - 1}", f"'1-{2**63 - 1}'"),
        (f"{U1}:1-5:x-y", "'x-y'"),
        (f"{U1}:tag", "tag 'tag' has no interval"),
        (f"{U1}:a:b:1", "tag 'a' has no interval"),
        (f"{U1}:1-5,\n{U2}:1:-2", "'-2'"),
        (f"{U1}:{'t' * 33}:1", "'" + "t" * 33 + "'"),
        (f"{U1}:9tag:1", "'9tag'"),
    ],
)
def test_parse_errors_name_the_bad_part(text, named):
    with pytest.raises(UsageError) as exc:
        MysqlGtidSet(text)
    message = str(exc.value)
    assert named in message
    assert "\n" not in message
