"""GET /deployments/actions (order, keyset paging, status filter) and GET /deployments/summary."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from http import HTTPStatus

import pytest

from tests.api.conftest import ACTIONS
from tests.api.conftest import SUMMARY
from tests.api.conftest import error_code

STATUSES = ["proposed", "approved", "rejected", "executed", "expired"]


def _pages(caller, **query) -> list[list[dict]]:
    """Every page of the list, following next_cursor to the end."""
    pages = []
    cursor = None
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        response = caller.get(ACTIONS, query_string=params)
        assert response.status_code == HTTPStatus.OK, response.get_json()
        body = response.get_json()
        assert set(body) == {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "paging does not end"


def _order_key(item: dict):
    return (item["proposed_at"], item["id"])


@pytest.fixture
def eleven_rows(alice, clock) -> list[dict]:
    """Eleven proposals at three instants, so ties on proposed_at must be broken by id."""
    rows = []
    for count in (4, 3, 4):
        rows += [alice.propose(target_ref=f"ref-{len(rows) + i}") for i in range(count)]
        clock.advance(minutes=7)
    return rows


def test_the_list_is_newest_first_then_by_id_descending(alice, eleven_rows):
    response = alice.get(ACTIONS)

    assert response.status_code == HTTPStatus.OK
    items = response.get_json()["items"]
    assert [item["id"] for item in items] == [item["id"] for item in sorted(eleven_rows, key=_order_key, reverse=True)]
    assert response.get_json()["next_cursor"] is None


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 10, 11, 12, 200])
def test_keyset_pages_cover_every_row_once_in_order(alice, eleven_rows, limit):
    pages = _pages(alice, limit=limit)

    ids = [item["id"] for page in pages for item in page]
    assert ids == [item["id"] for item in sorted(eleven_rows, key=_order_key, reverse=True)]
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit


def test_the_default_page_is_fifty(alice, clock):
    for index in range(51):
        alice.propose(target_ref=f"ref-{index}")
        clock.advance(seconds=1)

    first = alice.get(ACTIONS).get_json()

    assert len(first["items"]) == 50
    assert first["next_cursor"] is not None
    second = alice.get(ACTIONS, query_string={"cursor": first["next_cursor"]}).get_json()
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None


def test_rows_proposed_while_paging_cause_no_duplicate_and_no_gap(alice, eleven_rows, clock):
    first = alice.get(ACTIONS, query_string={"limit": 5}).get_json()
    clock.advance(hours=1)
    alice.propose(target_ref="newcomer")

    rest = _pages(alice, limit=5, cursor=first["next_cursor"])

    ids = [item["id"] for item in first["items"]] + [item["id"] for page in rest for item in page]
    assert ids == [item["id"] for item in sorted(eleven_rows, key=_order_key, reverse=True)]


@pytest.fixture
def one_row_per_status(alice, bob, clock) -> dict[str, str]:
    """Two rows in each of the five statuses; returns {id: status}."""
    rows = {}
    for _ in range(2):
        for status in STATUSES:
            action = alice.propose(ttl_seconds=60 if status == "expired" else 3600)
            steps = {"approved": ["approve"], "executed": ["approve", "mark-executed"], "rejected": ["reject"]}
            for transition in steps.get(status, []):
                assert bob.transition(action["id"], transition).status_code == HTTPStatus.OK
            rows[action["id"]] = status
            clock.advance(seconds=10)
    clock.advance(minutes=2)  # the `expired` rows' TTL has passed; the others were decided in time
    return rows


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("limit", [1, 50])
def test_the_status_filter_pages_through_that_status_only(alice, one_row_per_status, status, limit):
    pages = _pages(alice, status=status, limit=limit)

    items = [item for page in pages for item in page]
    assert {item["id"] for item in items} == {i for i, s in one_row_per_status.items() if s == status}
    assert all(item["status"] == status for item in items)
    assert len(items) == len({item["id"] for item in items})


@pytest.mark.parametrize("status", ["", "all"])
def test_an_empty_or_all_status_lists_everything(alice, one_row_per_status, status):
    items = alice.get(ACTIONS, query_string={"status": status}).get_json()["items"]

    assert {item["id"]: item["status"] for item in items} == one_row_per_status


def test_the_list_shows_only_the_callers_workspace(alice, rival):
    mine = alice.propose()
    rival.propose()

    assert [item["id"] for item in alice.get(ACTIONS).get_json()["items"]] == [mine["id"]]


BAD_LIST_QUERIES = [
    ({"status": "pending"}, "status"),
    ({"status": "PROPOSED"}, "status"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": "1.5"}, "limit"),
    ({"limit": ""}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "W10"}, "cursor"),
    ({"cursor": "WyJ4IiwgImFjdF8xIl0"}, "cursor"),
    ({"cursor": ""}, "cursor"),
    ({"cursor": "%%%"}, "cursor"),
    ({"cursor": "x" * 501}, "cursor"),
    ({"sort": "asc"}, "sort"),
    ({"offset": "10"}, "offset"),
    ({"limit": " 5"}, "limit"),
    ({"limit": "+5"}, "limit"),
    ({"limit": "\uff15"}, "limit"),
    ({"status": ["proposed", "bogus"]}, "status"),
    ({"limit": ["5", "6"]}, "limit"),
]


@pytest.mark.parametrize(("query", "field"), BAD_LIST_QUERIES, ids=[str(q)[:40] for q, _ in BAD_LIST_QUERIES])
def test_a_bad_list_query_is_a_validation_error_naming_the_parameter(alice, eleven_rows, query, field):
    response = alice.get(ACTIONS, query_string=query)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert field in response.get_json()["error"]["details"]


# ----------------------------------------------------------------------------- summary

SUMMARY_FIELDS = {"proposed", "pending_approval", "executed_today", "rejected_today", "by_status", "tz", "as_of"}


def test_the_summary_counts_the_workspace_by_status(alice, bob, one_row_per_status, rival, clock):
    rival.propose()
    alice.propose(mode="dry_run")  # proposed, but not pending approval

    response = alice.get(SUMMARY)

    assert response.status_code == HTTPStatus.OK
    summary = response.get_json()
    assert set(summary) == SUMMARY_FIELDS
    assert summary["by_status"] == {"proposed": 3, "approved": 2, "executed": 2, "rejected": 2, "expired": 2, "all": 11}
    assert summary["proposed"] == 3
    assert summary["pending_approval"] == 2
    assert summary["executed_today"] == 2
    assert summary["rejected_today"] == 2
    assert summary["tz"] == "UTC"
    assert summary["as_of"] == clock().strftime("%Y-%m-%dT%H:%M:%SZ")


def test_pending_approval_drops_a_row_whose_ttl_has_passed(alice, clock):
    alice.propose(ttl_seconds=60)
    alice.propose(ttl_seconds=3600)
    assert alice.get(SUMMARY).get_json()["pending_approval"] == 2

    clock.advance(seconds=61)

    summary = alice.get(SUMMARY).get_json()
    assert summary["pending_approval"] == 1
    assert summary["proposed"] == 1
    assert summary["by_status"]["expired"] == 1


@pytest.mark.parametrize(
    ("tz", "executed_today", "rejected_today"),
    [
        # now is 2026-11-30 12:00Z. Executed at 11-29 23:00Z and 11-30 09:59:59Z; rejected at 11-30 02:00Z.
        ("UTC", 1, 1),  # today from 11-30 00:00Z
        ("Asia/Tokyo", 2, 1),  # today from 11-29 15:00Z
        ("America/Los_Angeles", 1, 0),  # today from 11-30 08:00Z
        ("Pacific/Kiritimati", 0, 0),  # UTC+14, already 12-01 there: today from 11-30 10:00Z
    ],
)
def test_today_starts_at_local_midnight_in_the_time_zone(alice, bob, clock, tz, executed_today, rejected_today):
    clock.now = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
    early, rejected, late = (alice.propose(ttl_seconds=604800) for _ in range(3))
    assert bob.approve(early).status_code == bob.approve(late).status_code == HTTPStatus.OK
    steps = [
        (datetime(2026, 11, 29, 23, 0, tzinfo=UTC), early, "mark-executed"),
        (datetime(2026, 11, 30, 2, 0, tzinfo=UTC), rejected, "reject"),
        (datetime(2026, 11, 30, 9, 59, 59, tzinfo=UTC), late, "mark-executed"),
    ]
    for moment, action, transition in steps:
        clock.now = moment
        assert bob.transition(action["id"], transition).status_code == HTTPStatus.OK
    clock.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    summary = alice.get(SUMMARY, query_string={"tz": tz}).get_json()

    assert summary["tz"] == tz
    assert (summary["executed_today"], summary["rejected_today"]) == (executed_today, rejected_today)


@pytest.mark.parametrize(
    "query",
    [
        {"tz": "Mars/Olympus_Mons"},
        {"tz": "utc+2"},
        {"tz": "../../etc/passwd"},
        {"tz": "/etc/localtime"},
        {"tz": ""},
        {"tz": " UTC"},
        {"tz": "x" * 65},
        {"tz": "Europe/Paris\x00"},
        {"zone": "UTC"},
        {"tz": "localtime"},
        {"tz": "posix/UTC"},
        {"tz": "right/UTC"},
        {"tz": ["UTC", "bad"]},
    ],
    ids=[
        "unknown",
        "offset",
        "relative-path",
        "absolute-path",
        "empty",
        "padded",
        "too-long",
        "nul",
        "unknown-param",
        "localtime",
        "posix",
        "right",
        "repeated",
    ],
)
def test_a_bad_summary_query_is_a_validation_error(alice, query):
    response = alice.get(SUMMARY, query_string=query)

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert error_code(response) == "validation_error"
    assert set(query) & set(response.get_json()["error"]["details"])


def test_an_empty_workspace_has_a_zero_summary(alice):
    summary = alice.get(SUMMARY).get_json()

    assert summary["by_status"] == {"proposed": 0, "approved": 0, "executed": 0, "rejected": 0, "expired": 0, "all": 0}
    assert summary["proposed"] == summary["pending_approval"] == 0
