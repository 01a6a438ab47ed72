"""A short English reading of a cron expression for the console (CON-3), e.g. "At 08:00, every day
(Europe/Athens)". Parsing and firing live in ``jobs.cron``."""

from __future__ import annotations

import re

from jobs.cron import DAY_TITLES, MONTH_TITLES, CronExpression, as_cron, join_words


def describe(expr: str | CronExpression, tz_name: str | None = None) -> str:
    """A short English reading for the console, e.g. "At 08:00, every day (Europe/Athens)".

    The zone is appended whenever the schedule depends on the local hour or date. Shapes not
    covered read as the raw expression plus the zone. Raises ``CronError`` if ``expr`` is invalid.
    """
    cron = as_cron(expr)
    zone = f" ({tz_name})" if tz_name else ""
    if cron.fields[1:] == ("*", "*", "*", "*"):
        zone = ""  # "every 15 minutes" reads the same in every zone
    time_text = _describe_time(cron)
    day_text = _describe_days(cron)
    if time_text is None or day_text is None:
        return f"{cron.source}{zone}"
    if day_text == "every day":
        # "At 08:00" needs "every day"; "Every 15 minutes" or "... of every hour" already says it.
        recurring = time_text.startswith("Every") or time_text.endswith("every hour")
        text = time_text if recurring else f"{time_text}, every day"
    elif day_text.startswith("on ") and "," not in time_text:
        text = f"{time_text} {day_text}"
    else:
        text = f"{time_text}, {day_text}"
    return text + _describe_months(cron) + zone


def _describe_time(cron: CronExpression) -> str | None:
    minutes, hours = cron.minutes, cron.hours
    every_minute_step = _step(cron.fields[0], 60)
    all_minutes, all_hours = len(minutes) == 60, len(hours) == 24
    if all_hours:
        if all_minutes:
            return "Every minute"
        if every_minute_step:
            return f"Every {every_minute_step} minutes"
        if minutes == (0,):
            return "Every hour, on the hour"
        if len(minutes) <= 4:
            which = join_words([str(m) for m in minutes], "and")
            return f"At minute{'s' if len(minutes) > 1 else ''} {which} of every hour"
        return None
    if len(minutes) * len(hours) <= 6:  # a few times of day read best as a list
        times = [f"{h:02d}:{m:02d}" for h in hours for m in minutes]
        return "At " + join_words(times, "and")
    hour_step = _step(cron.fields[1], 24)
    if hour_step and len(minutes) == 1:
        at = "on the hour" if minutes == (0,) else f"at minute {minutes[0]}"
        return f"Every {hour_step} hours, {at}"
    if hours == tuple(range(hours[0], hours[-1] + 1)):
        first, last = hours[0], hours[-1]
        if len(minutes) == 1:
            m = minutes[0]
            return f"Every hour from {first:02d}:{m:02d} through {last:02d}:{m:02d}"
        if all_minutes:
            return f"Every minute from {first:02d}:00 through {last:02d}:59"
        if every_minute_step:
            return (f"Every {every_minute_step} minutes from {first:02d}:00 through "
                    f"{last:02d}:{minutes[-1]:02d}")
    return None


def _step(text: str, period: int) -> int | None:
    """n for a ``*/n`` field that divides its period evenly (so "every n" is literally true)."""
    match = re.fullmatch(r"\*/([0-9]+)", text)
    if match is None:
        return None
    step = int(match.group(1))
    return step if 1 < step < period and period % step == 0 else None


def _describe_days(cron: CronExpression) -> str | None:
    dom_text, dow_text = cron.fields[2], cron.fields[4]
    if dom_text == "*" and dow_text == "*":
        return "every day"
    if dow_text == "*":
        return _describe_dom(cron)
    if dom_text == "*":
        return _describe_dow(cron.days_of_week)
    if cron.dom_star or cron.dow_star:
        return None  # an AND of two restricted day fields: no short honest wording
    dom, dow = _describe_dom(cron), _describe_dow(cron.days_of_week)
    if dom is None or dow is None or dow == "every day":
        return None
    return f"{dom}, plus every {dow.removeprefix('on ')}"  # Vixie OR: either day field matches


def _describe_dom(cron: CronExpression) -> str | None:
    days = cron.days_of_month
    if len(days) == 31:
        return "every day"
    if len(days) == 1 and len(cron.months) == 1:
        return f"on {MONTH_TITLES[cron.months[0] - 1]} {days[0]}"
    if len(days) == 1:
        return f"on day {days[0]} of the month"
    if len(days) >= 3 and days == tuple(range(days[0], days[-1] + 1)):
        return f"on days {days[0]} through {days[-1]} of the month"
    if len(days) <= 4:
        return f"on days {join_words([str(d) for d in days], 'and')} of the month"
    return None


def _describe_dow(days: tuple[int, ...]) -> str:
    if len(days) == 7:
        return "every day"
    monday_first = sorted((d + 6) % 7 for d in days)  # Monday=0 ... Sunday=6 reads naturally
    names = [DAY_TITLES[(d + 1) % 7] for d in monday_first]
    if len(days) >= 3 and monday_first == list(range(monday_first[0], monday_first[-1] + 1)):
        return f"{names[0]} through {names[-1]}"
    return "on " + join_words(names, "and")


def _describe_months(cron: CronExpression) -> str:
    months = cron.months
    if len(months) == 12 or (len(cron.days_of_month) == 1 and len(months) == 1
                             and cron.fields[4] == "*"):
        return ""  # all months, or already said ("on January 1")
    names = [MONTH_TITLES[m - 1] for m in months]
    if len(months) >= 3 and months == tuple(range(months[0], months[-1] + 1)):
        return f", {names[0]} through {names[-1]}"
    return " in " + join_words(names, "and")
