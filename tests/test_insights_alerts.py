"""Bucket insights, alert crossings, and the side-by-side ranking."""

from __future__ import annotations

from pullwatch.alerts import AlertTracker, Level
from pullwatch.assess import Assessment, assess
from pullwatch.comparison import best_to_use, ranked
from pullwatch.insights import by_label, find_insights
from pullwatch.reading import Reading, Source, State, parse_source

UUID = "186e63fa-1b6a-4c51-9f12-61a26f0a9c01"


def r(label: str, state: State = State.OK, remaining: int | None = 90, limit: int | None = 100,
      window: int | None = 21600, source: str | None = "203.0.113.7",
      username: str | None = None) -> Reading:  # fmt: skip
    return Reading(label, username, 0.0, state, limit, remaining, window, source)


def a(*args: object, **kwargs: object) -> Assessment:
    """The assessment of one reading made by `r()`."""
    return assess(r(*args, **kwargs))  # type: ignore[arg-type]


def sources(*values: str) -> list[Source]:
    return [s for s in map(parse_source, values) if s is not None]


def kinds(
    readings: list[Reading], seen: dict[str, list[Source]] | None = None
) -> set[tuple[str, str]]:
    return {(i.label, i.kind) for i in find_insights(readings, seen)}


def test_credentials_not_applied() -> None:
    found = find_insights([r("ci", username="alice", source="203.0.113.7")])
    (insight,) = [i for i in found if i.kind == "credentials_not_applied"]
    assert "charged to 203.0.113.7" in insight.message


def test_shared_bucket_by_account_and_by_ip() -> None:
    readings = [
        r("ci", remaining=180, limit=200, source=UUID, username="alice"),
        r("mirror", remaining=180, limit=200, source=UUID, username="alice"),
        r("anon-1"),
        r("anon-2"),
        r("solo", source="198.51.100.4"),
    ]
    messages = by_label(find_insights(readings))
    assert "shares one quota with mirror (same account: account 186e63fa)" in messages["ci"]
    assert any("shares one quota with anon-2 (same address" in m for m in messages["anon-1"])
    assert not any("shares" in m for m in messages.get("solo", []))


def test_several_sources() -> None:
    seen = {"anon": sources("203.0.113.7", "2001:db8:1:2::/64")}
    (insight,) = [i for i in find_insights([r("anon")], seen) if i.kind == "several_sources"]
    assert "2 different sources" in insight.message and "dual stack" in insight.message


def test_differs_from_documented() -> None:
    assert ("anon", "differs_from_documented") in kinds([r("anon", limit=100, window=3600)])
    assert ("anon", "differs_from_documented") not in kinds([r("anon", limit=100, window=21600)])
    personal = r("ci", remaining=150, limit=200, source=UUID, username="alice")
    assert ("ci", "differs_from_documented") not in kinds([personal])
    odd = r("ci", remaining=50, limit=100, source=UUID, username="alice")
    (message,) = [i.message for i in find_insights([odd]) if i.kind == "differs_from_documented"]
    assert "documented 200 per 6 h for Personal accounts" in message
    assert kinds([r("paid", State.UNMETERED, None, None, None, UUID, "bob")]) == set()


def test_alerts_fire_once_per_crossing() -> None:
    tracker = AlertTracker()
    assert tracker.observe(a("a", State.OK, 10)) is None  # the baseline (low): not news
    assert tracker.observe(a("a", State.OK, 90)) is None
    low = tracker.observe(a("a", State.OK, 15))  # 15 of 100: under 20%, so low
    assert low is not None and low.level is Level.LOW and "15 pulls left" in low.message
    assert tracker.observe(a("a", State.OK, 12)) is None  # still low: no repeat
    assert tracker.observe(a("a", State.ERROR, None)) is None  # a failure says nothing
    exhausted = tracker.observe(a("a", State.EXHAUSTED, 0))
    assert exhausted is not None and exhausted.level is Level.EXHAUSTED
    assert tracker.observe(a("a", State.EXHAUSTED, 0)) is None
    assert tracker.observe(a("a", State.OK, 60)) is None  # recovered: re-armed
    assert tracker.observe(a("a", State.EXHAUSTED, 0)) is not None


def test_ranking_and_best_identity() -> None:
    assessments = [
        a("spent", State.EXHAUSTED, 0),
        a("broken", State.ERROR, None, None),
        a("some", remaining=20),
        a("lots", remaining=80),
        a("paid", State.UNMETERED, None, None),
    ]
    assert [x.label for x in ranked(assessments)] == ["paid", "lots", "some", "spent", "broken"]
    best = best_to_use(assessments)
    assert best is not None and best.label == "paid"
    assert best_to_use([a("spent", State.EXHAUSTED, 0), a("broken", State.ERROR, None)]) is None


def test_the_outlook_names_who_to_switch_to_and_the_ranking_prefers_what_lasts() -> None:
    from pullwatch.comparison import outlook
    from pullwatch.recent import RecentHistory

    recent = RecentHistory()
    alice = [
        Reading("alice", "alice", 60.0 * k, State.OK, 200, 150 - 10 * k, 21600, UUID)
        for k in range(6)
    ]
    bob = [
        Reading("bob", "bob", 60.0 * k, State.OK, 200, 80, 21600, "bob-account-uuid-0001")
        for k in range(6)
    ]
    recent.load([*alice, *bob])
    now = 300.0
    a_alice = assess(alice[-1], recent=recent)
    a_bob = assess(bob[-1], recent=recent)
    assert a_alice.runs_out_in(now) is not None and a_bob.runs_out_in(now) is None
    line = outlook(a_alice, [a_bob], now)
    assert line is not None and line.startswith("alice runs out in ~")
    assert "bob is not draining: switch the pulling client to bob" in line
    assert outlook(a_bob, [a_alice], now) is None  # bob is not draining: nothing to say
    # 100 left and draining fast is worse than 80 left and steady
    assert [a.label for a in ranked([a_alice, a_bob], now)] == ["bob", "alice"]
