"""jobs.cron: parsing and validation (SCH-1), Vixie day semantics and firing (SCH-2), describe()."""

from __future__ import annotations

import ast
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from jobs.cron import (
    CronError,
    CronExpression,
    TimezoneError,
    fires_between,
    next_fires,
    parse_cron,
    validate_timezone,
)
from jobs.cron_describe import describe

START = datetime(2026, 1, 1, tzinfo=UTC)


def _local(instants: list[datetime], zone: str) -> list[str]:
    return [i.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %a %H:%M") for i in instants]


# SCH-1: the module stays pure, so the scheduler, API and console can all use it.
def test_module_imports_no_app_models_or_database_code() -> None:
    source = Path(__file__).resolve().parents[2] / "jobs" / "cron.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    allowed = {"__future__", "bisect", "functools", "re", "zoneinfo", "collections", "dataclasses",
               "datetime", "croniter"}
    assert imported <= allowed, imported - allowed


# SCH-1: valid expressions and the value sets they stand for.
@pytest.mark.parametrize(
    ("expr", "field", "expected"),
    [
        ("* * * * *", "minutes", tuple(range(60))),
        ("*/15 * * * *", "minutes", (0, 15, 30, 45)),
        ("5/20 * * * *", "minutes", (5, 25, 45)),  # a/n = a-max/n (cronie)
        ("10-20/5 * * * *", "minutes", (10, 15, 20)),
        ("1,2,3,2 * * * *", "minutes", (1, 2, 3)),
        ("05 * * * *", "minutes", (5,)),
        ("*/60 * * * *", "minutes", (0,)),
        ("0 9-17 * * *", "hours", tuple(range(9, 18))),
        ("0 22-23,0-2 * * *", "hours", (0, 1, 2, 22, 23)),
        ("0 */6 * * *", "hours", (0, 6, 12, 18)),
        ("0 0 1,15,31 * *", "days_of_month", (1, 15, 31)),
        ("0 0 */10 * *", "days_of_month", (1, 11, 21, 31)),
        ("0 0 * jan-mar *", "months", (1, 2, 3)),
        ("0 0 * JUL,Dec *", "months", (7, 12)),
        ("0 0 * */4 *", "months", (1, 5, 9)),
        ("0 0 * Jan-Dec/6 *", "months", (1, 7)),
        ("0 0 * * mon-fri", "days_of_week", (1, 2, 3, 4, 5)),
        ("0 0 * * SUN", "days_of_week", (0,)),
        ("0 0 * * 7", "days_of_week", (0,)),  # Sunday is 7 as well as 0
        ("0 0 * * 0,7", "days_of_week", (0,)),
        ("0 0 * * 5-7", "days_of_week", (0, 5, 6)),
        ("0 0 * * fri-sun", "days_of_week", (0, 5, 6)),  # a range may end on Sunday...
        ("0 0 * * 5-0", "days_of_week", (0, 5, 6)),
        ("0 0 * * sun-sat", "days_of_week", tuple(range(7))),
        ("0 0 * * */2", "days_of_week", (0, 2, 4, 6)),  # 0,2,4,6 (and 7 = 0)
        ("0 0 * * mon/2", "days_of_week", (0, 1, 3, 5)),  # 1,3,5,7
        ("  0\t0  * *   *  ", "hours", (0,)),
    ],
)
def test_parse_valid(expr: str, field: str, expected: tuple[int, ...]) -> None:
    assert getattr(parse_cron(expr), field) == expected


# SCH-1: macros expand to their five-field meaning; @reboot and unknown ones are refused.
@pytest.mark.parametrize(
    ("macro", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        (" @hourly ", "0 * * * *"),
    ],
)
def test_macros(macro: str, fields: str) -> None:
    parsed, plain = parse_cron(macro), parse_cron(fields)
    assert parsed.fields == plain.fields
    assert parsed.source == macro.strip()
    assert next_fires(parsed, "UTC", START, 5) == next_fires(plain, "UTC", START, 5)


# SCH-1: every invalid input names its field and says what is wrong.
@pytest.mark.parametrize(
    ("expr", "field", "fragment"),
    [
        ("", "expression", "empty"),
        ("   ", "expression", "empty"),
        ("* * * *", "expression", "expected 5 fields"),
        ("* * * * * *", "expression", "got 6"),
        ("0 0 * * * /usr/bin/true", "expression", "got 6"),
        ("@reboot", "expression", "@reboot is not supported"),
        ("@every 5m", "expression", "unknown macro '@every'"),
        ("@fortnightly", "expression", "unknown macro"),
        ("@daily 5", "expression", "whole expression"),
        ("x" * 600, "expression", "longer than"),
        ("60 * * * *", "minute", "minute 60 is out of range 0-59"),
        ("0 24 * * *", "hour", "hour 24 is out of range 0-23"),
        ("0 0 0 * *", "day_of_month", "day-of-month 0 is out of range 1-31"),
        ("0 0 32 * *", "day_of_month", "day-of-month 32 is out of range 1-31"),
        ("0 0 * 13 *", "month", "month 13 is out of range 1-12"),
        ("0 0 * 0 *", "month", "month 0 is out of range 1-12"),
        ("0 0 * * 8", "day_of_week", "day-of-week 8 is out of range 0-7"),
        ("0 0 * * funday", "day_of_week", "'funday' is not a number 0-7 or a day name sun-sat"),
        ("0 0 * * monday", "day_of_week", "day name"),
        ("0 0 * janvier *", "month", "month name"),
        ("0 mon * * *", "hour", "'mon' is not a number 0-23"),
        ("0 0 * * mon-jan", "day_of_week", "'jan' is not"),
        ("-1 * * * *", "minute", "incomplete"),
        ("+5 * * * *", "minute", "not a number"),
        ("1.5 * * * *", "minute", "not a number"),
        ("5-2 * * * *", "minute", "runs backwards"),
        ("0 22-2 * * *", "hour", "wrap-around"),
        ("0 0 * * fri-mon", "day_of_week", "runs backwards"),  # ...but not wrap past it
        ("1- * * * *", "minute", "incomplete"),
        ("1-2-3 * * * *", "minute", "not a number"),
        ("*/0 * * * *", "minute", "at least 1"),
        ("*/61 * * * *", "minute", "larger than the range 0-59"),
        ("0 */25 * * *", "hour", "larger than the range"),
        ("*/x * * * *", "minute", "step 'x'"),
        ("*/2/3 * * * *", "minute", "step '2/3'"),
        ("/5 * * * *", "minute", "no value before '/'"),
        ("*5 * * * *", "minute", "'*' may only be followed by '/step'"),
        ("*-5 * * * *", "minute", "'*' may only be followed"),
        ("1,,2 * * * *", "minute", "empty item"),
        ("1, * * * *", "minute", "empty item"),
        ("99999999999999 * * * *", "minute", "out of range"),
        ("٣ * * * *", "minute", "not a number"),  # only ASCII digits
        ("0 0 30 2 *", "day_of_month", "never occurs in February"),
        ("0 0 31 4,6,9,11 *", "day_of_month", "never fire"),
        ("0 0 30,31 feb *", "day_of_month", "never fire"),
        ("0 0 31 2 */2", "day_of_month", "never fire"),  # AND mode: the 31st of February is needed
    ],
)
def test_parse_invalid_names_the_field(expr: str, field: str, fragment: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expr)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert str(caught.value) == caught.value.message
    assert isinstance(caught.value, ValueError)  # callers may catch it as a plain ValueError


# SCH-1: February 29 and weekday alternatives are not "never fires".
@pytest.mark.parametrize("expr", ["0 0 29 2 *", "0 0 30 2 1", "0 0 31 2 mon", "0 0 30 2,3 *"])
def test_rare_but_possible_expressions_are_accepted(expr: str) -> None:
    assert next_fires(expr, "UTC", START, 2)


# SCH-1
@pytest.mark.parametrize("name", ["Europe/Athens", "America/New_York", "UTC", "Etc/GMT+5",
                                  "America/Argentina/Buenos_Aires", "Asia/Kolkata", "US/Eastern"])
def test_validate_timezone_accepts_iana_names(name: str) -> None:
    zone = validate_timezone(name)
    assert isinstance(zone, ZoneInfo) and zone.key == name


# SCH-1
@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("../etc", "unknown time zone"),
        ("../../etc/passwd", "unknown"),
        ("/etc/localtime", "unknown"),
        ("Europe/../Europe/Athens", "unknown"),
        ("localtime", "unknown"),  # the host's zone: means something different on every machine
        ("Factory", "unknown"),
        ("America", "unknown"),  # a directory of the database, not a zone
        ("Mars/Olympus_Mons", "unknown"),
        ("Europe/Athens ", "unknown"),
        ("europe/athens", "did you mean Europe/Athens?"),
        ("+02:00", "unknown"),
        ("Europe/Athens\x00", "unknown"),
        ("A" * 500, "unknown"),
    ],
)
def test_validate_timezone_rejects(name: str, fragment: str) -> None:
    with pytest.raises(TimezoneError) as caught:
        validate_timezone(name)
    assert fragment in caught.value.message
    assert len(caught.value.message) < 200


# SCH-1
def test_a_bad_zone_name_is_rejected_by_next_fires() -> None:
    with pytest.raises(TimezoneError):
        next_fires("0 8 * * *", "Europe/Atlantis", START, 1)


# SCH-2: Vixie OR — both day fields restricted, either one matching is enough.
def test_vixie_or_when_both_day_fields_are_restricted() -> None:
    fires = next_fires("0 0 1 * 1", "UTC", START, 12)
    days = [f.date() for f in fires]
    assert date(2026, 2, 1) in days and date(2026, 2, 1).weekday() == 6  # the 1st, a Sunday
    assert date(2026, 1, 5) in days  # a Monday that is not the 1st
    assert all(d.day == 1 or d.weekday() == 0 for d in days)
    # The man page's example: 04:30 on the 1st and 15th of each month, plus every Friday.
    fires = next_fires("30 4 1,15 * 5", "UTC", START, 10)
    assert [f.date().isoformat() for f in fires[:4]] == ["2026-01-01", "2026-01-02", "2026-01-09",
                                                         "2026-01-15"]


# SCH-2: a day field starting with "*" (even "*/2") makes the day test an AND (Vixie DOM_STAR).
def test_vixie_and_when_a_day_field_starts_with_a_star() -> None:
    fires = next_fires("0 0 */2 * 1", "UTC", START, 6)  # odd-dated Mondays only
    assert all(f.day % 2 == 1 and f.weekday() == 0 for f in fires)
    fires = next_fires("0 0 1 * */2", "UTC", START, 4)  # the 1st, when a Sun/Tue/Thu/Sat
    assert [f.date().isoformat() for f in fires] == ["2026-02-01", "2026-03-01", "2026-08-01",
                                                     "2026-09-01"]
    # croniter reads "*/2" as restricted (OR) here; Vixie/cronie do not (reference/cron.md).
    assert croniter("0 0 */2 * 1", START).get_next(datetime).day == 3


# SCH-2: Sunday as 0, 7 or SUN fires on the same days.
def test_sunday_is_zero_and_seven() -> None:
    expected = next_fires("0 9 * * 0", "UTC", START, 8)
    assert all(f.weekday() == 6 for f in expected)
    assert next_fires("0 9 * * 7", "UTC", START, 8) == expected
    assert next_fires("0 9 * * sun", "UTC", START, 8) == expected
    assert next_fires("0 9 * * Sun", "UTC", START, 8) == expected
    assert next_fires("0 9 * * 6-7", "UTC", START, 8) == next_fires("0 9 * * sat,sun", "UTC", START, 8)


# SCH-2
def test_names_equal_numbers() -> None:
    assert next_fires("0 9 1 jan,jul mon-fri", "UTC", START, 10) == next_fires(
        "0 9 1 1,7 1-5", "UTC", START, 10)


# SCH-2: agreement with croniter (Vixie OR semantics) where its reading is Vixie's: a zone without
# DST and UTC, so DST handling does not enter into it.
@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *", "*/7 * * * *", "5/15 */3 * * *", "0 8 * * *", "30 9 * * 1-5", "0 0 1 * *",
        "0 0 1 * 1", "30 4 1,15 * 5", "0 12 13 * fri", "15 14 1 * *", "0 22 * * 1-5",
        "23 0-20/2 * * *", "5 4 * * sun", "0 0,12 1 */2 *", "0 4 8-14 * *", "0 0 29 2 *",
        "0 0 31 * *", "59 23 * * 7", "0 0 1 jan-mar/2 *", "@weekly", "@monthly", "@yearly",
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
def test_agrees_with_croniter(expr: str, zone: str) -> None:
    tz = ZoneInfo(zone)
    begin = datetime(2026, 2, 27, 13, 7, 30, tzinfo=tz)
    it = croniter(expr, begin)
    theirs = [it.get_next(datetime).astimezone(UTC) for _ in range(40)]
    assert next_fires(expr, zone, begin, 40) == theirs


# SCH-2
def test_next_fires_is_strictly_after_and_returns_aware_utc() -> None:
    at = datetime(2026, 5, 4, 8, 0, tzinfo=ZoneInfo("Europe/Athens"))
    fires = next_fires("0 8 * * *", "Europe/Athens", at, 3)
    assert fires[0] == at + timedelta(days=1)  # the fire at exactly `after` is not repeated
    assert all(f.tzinfo is UTC for f in fires)
    assert fires[0].isoformat() == "2026-05-05T05:00:00+00:00"
    just_before = at - timedelta(microseconds=1)
    assert next_fires("0 8 * * *", "Europe/Athens", just_before, 1) == [at]
    # `after` in another zone is the same instant.
    assert next_fires("0 8 * * *", "Europe/Athens", at.astimezone(timezone(timedelta(hours=-7))), 3) \
        == fires


# SCH-2
def test_next_fires_accepts_parsed_expressions_and_tzinfo() -> None:
    parsed = parse_cron("0 8 * * *")
    assert isinstance(parsed, CronExpression)
    assert next_fires(parsed, ZoneInfo("Europe/Athens"), START, 3) == next_fires(
        "0 8 * * *", "Europe/Athens", START, 3)
    assert next_fires("0 8 * * *", UTC, START, 1) == [datetime(2026, 1, 1, 8, tzinfo=UTC)]
    assert next_fires("0 8 * * *", "UTC", START, 0) == []


# SCH-2
def test_next_fires_rejects_naive_datetimes_and_negative_counts() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fires("0 8 * * *", "UTC", datetime(2026, 1, 1), 1)
    with pytest.raises(ValueError, match="negative"):
        next_fires("0 8 * * *", "UTC", START, -1)
    with pytest.raises(CronError):
        next_fires("0 0 30 2 *", "UTC", START, 1)


# SCH-2: rare schedules are found by jumping, not by stepping minutes.
def test_rare_schedules_are_found_quickly() -> None:
    # Feb 29 that is a Sunday (AND, because the weekday field starts with "*"): 2100 is not a leap
    # year, so after 2088 the next one is 2128.
    fires = next_fires("0 0 29 2 */7", "UTC", datetime(2089, 1, 1, tzinfo=UTC), 2)
    assert [f.date().isoformat() for f in fires] == ["2128-02-29", "2156-02-29"]
    began = time.perf_counter()
    for _ in range(50):
        next_fires("0 8 * * *", "Europe/Athens", START, 5)
        next_fires("0 0 29 2 *", "America/New_York", START, 5)
        next_fires("0 0 1 1 *", "Pacific/Chatham", START, 5)
    assert time.perf_counter() - began < 2.0  # a minute-by-minute walk would take far longer


# SCH-2: near the end of the calendar the search stops instead of overflowing.
def test_search_ends_at_the_calendar_limit() -> None:
    with pytest.raises(CronError, match="no fire time"):
        next_fires("0 0 1 1 *", "UTC", datetime(9999, 6, 1, tzinfo=UTC), 1)
    with pytest.raises(CronError, match="no fire time"):
        next_fires("0 0 * * *", "UTC", datetime(9999, 12, 31, 1, tzinfo=UTC), 1)


# SCH-2: catch-up after downtime: start exclusive, end inclusive.
def test_fires_between() -> None:
    start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    end = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    fires = fires_between("*/15 * * * *", "UTC", start, end)
    assert [f.strftime("%H:%M") for f in fires] == ["08:15", "08:30", "08:45", "09:00"]
    assert fires_between("*/15 * * * *", "UTC", end, start) == []
    assert fires_between("*/15 * * * *", "UTC", start, start) == []
    athens = fires_between("0 8 * * *", "Europe/Athens", START, START + timedelta(days=10))
    assert len(athens) == 10 and all(f.hour == 6 for f in athens)  # 08:00 EET is 06:00 UTC
    assert fires_between("0 0 29 2 *", "UTC", START, START + timedelta(days=365)) == []
    assert fires_between("0 8 * * *", "UTC", START, START + timedelta(days=40)) == next_fires(
        "0 8 * * *", "UTC", START, 40)
    with pytest.raises(ValueError, match="timezone-aware"):
        fires_between("0 8 * * *", "UTC", datetime(2026, 1, 1), end)


# describe(): the console's reading of an expression.
@pytest.mark.parametrize(
    ("expr", "zone", "text"),
    [
        ("0 8 * * *", "Europe/Athens", "At 08:00, every day (Europe/Athens)"),
        ("*/15 * * * *", "Europe/Athens", "Every 15 minutes"),
        ("* * * * *", None, "Every minute"),
        ("30 9 * * 1-5", None, "At 09:30, Monday through Friday"),
        ("30 9 * * mon-fri", "America/New_York", "At 09:30, Monday through Friday (America/New_York)"),
        ("0 0 1 * *", None, "At 00:00 on day 1 of the month"),
        ("5 * * * *", "Europe/Athens", "At minute 5 of every hour"),
        ("0 * * * *", None, "Every hour, on the hour"),
        ("@hourly", None, "Every hour, on the hour"),
        ("@daily", "UTC", "At 00:00, every day (UTC)"),
        ("@weekly", None, "At 00:00 on Sunday"),
        ("@monthly", None, "At 00:00 on day 1 of the month"),
        ("@yearly", None, "At 00:00 on January 1"),
        ("0 8,17 * * *", None, "At 08:00 and 17:00, every day"),
        ("0 8 * * sat,sun", None, "At 08:00 on Saturday and Sunday"),
        ("0 8 * * 0,6", None, "At 08:00 on Saturday and Sunday"),
        ("0 8 * * 5-7", None, "At 08:00, Friday through Sunday"),
        ("0 18 * * 1,3,5", None, "At 18:00 on Monday, Wednesday and Friday"),
        ("0 0 1,15 * *", None, "At 00:00 on days 1 and 15 of the month"),
        ("0 0 1-7 * *", None, "At 00:00 on days 1 through 7 of the month"),
        ("0 0 1 * 1", None, "At 00:00 on day 1 of the month, plus every Monday"),
        ("30 4 1,15 * 5", None, "At 04:30 on days 1 and 15 of the month, plus every Friday"),
        ("0 */2 * * *", None, "Every 2 hours, on the hour"),
        ("15 */6 * * *", None, "At 00:15, 06:15, 12:15 and 18:15, every day"),
        ("0 9-17 * * 1-5", "Europe/London",
         "Every hour from 09:00 through 17:00, Monday through Friday (Europe/London)"),
        ("*/15 9-17 * * *", None, "Every 15 minutes from 09:00 through 17:45"),
        ("0 0 * 12 *", None, "At 00:00, every day in December"),
        ("0 9 * 6-8 1", None, "At 09:00 on Monday, June through August"),
        ("0,30 * * * *", None, "At minutes 0 and 30 of every hour"),
        # Exotic shapes fall back to the expression itself.
        ("5,35 */3 * * 1-5", "Europe/Athens", "5,35 */3 * * 1-5 (Europe/Athens)"),
        ("0 0 */2 * 1", None, "0 0 */2 * 1"),
        ("*/7 * * * *", None, "*/7 * * * *"),
    ],
)
def test_describe(expr: str, zone: str | None, text: str) -> None:
    assert describe(expr, zone) == text


def test_describe_rejects_invalid_expressions() -> None:
    with pytest.raises(CronError):
        describe("0 24 * * *", "UTC")
