"""Settings of a BatchInference: the transform's sizing and formats, and the missing-run window of a schedule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration, Token
from aws_cdk import aws_scheduler as scheduler

from cdk_mlops.constructs.common import INSTANCE_TYPE
from cdk_mlops.pipeline_definition.scoring import SPLIT_TYPES

__all__ = ["DEFAULT_MISSING_RUN_SLACK", "BatchTransformSettings", "missing_run_problems", "schedule_period"]

#: Added to a schedule's period before a run counts as missing: the trigger's quiet period, the
#: snapshot and the transform itself take time.
DEFAULT_MISSING_RUN_SLACK: Final = Duration.hours(2)
# CloudWatch evaluates an alarm over at most 7 days (period x evaluation periods).
_MAX_WINDOW_SECONDS: Final = 7 * 86400
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)\Z")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_SINGLE = re.compile(r"^[0-9A-Za-z]+\Z")


@dataclass(frozen=True, kw_only=True)
class BatchTransformSettings:
    """How the scoring pipeline's jobs are sized and what format the data has.

    Attributes:
        instance_type: The Batch Transform instances. Default: - ``ml.m5.large``.
        instance_count: How many; Batch Transform spreads the input files over them.
            Default: - 1.
        processing_instance_type: The instance ``PrepareInput`` runs on. Default: - ``ml.m5.large``.
        content_type: The MIME type of the transform input, and the ``Accept`` type of its
            output. Default: - ``text/csv``.
        split_type: How Batch Transform splits input files into records (``None``, ``Line``,
            ``RecordIO``, ``TFRecord``). Default: - ``Line``: one record per line, one
            prediction per line.
        rows_per_file: Rows per transform input file; more files let more instances share
            the work. Default: - 100,000.
    """

    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    processing_instance_type: str = "ml.m5.large"
    content_type: str = "text/csv"
    split_type: str = "Line"
    rows_per_file: int = 100_000

    def problems(self) -> list[str]:
        """Every invalid setting, each with its value and the fix (tokens pass)."""
        found: list[str] = []
        for name in ("instance_type", "processing_instance_type"):
            value = getattr(self, name)
            if not Token.is_unresolved(value) and not INSTANCE_TYPE.match(str(value)):
                found.append(f"settings.{name} {value!r} is not an ML instance type; use e.g. 'ml.m5.large'")
        if self.split_type not in SPLIT_TYPES:
            found.append(f"settings.split_type {self.split_type!r} is not one of {', '.join(SPLIT_TYPES)}")
        for name in ("instance_count", "rows_per_file"):
            value = getattr(self, name)
            if isinstance(value, float) and Token.is_unresolved(value):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                found.append(f"settings.{name} ({value!r}) must be a whole number >= 1")
        return found


def schedule_period(expression: scheduler.ScheduleExpression) -> Duration | None:
    """How often a schedule fires, when its expression says so plainly; None otherwise.

    ``rate(...)`` expressions give their rate. ``cron(...)`` expressions give one hour (every
    hour at a fixed minute), one day (a fixed hour, every day) or one week (a fixed hour and one
    day of the week); other crons (several days, days of the month, lists and ranges) have no
    single period, and ``at(...)`` fires once.
    """
    text = expression.expression_string
    if Token.is_unresolved(text):
        return None
    rate = _RATE.match(text)
    if rate is not None:
        amount, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        return Duration.seconds(amount * _UNIT_SECONDS[unit])
    if not (text.startswith("cron(") and text.endswith(")")):
        return None
    fields = text[len("cron(") : -1].split()
    if len(fields) != 6:
        return None
    minute, hour, day_of_month, month, day_of_week, year = fields
    every = {"*", "?"}
    if not _SINGLE.match(minute) or month not in every or year not in every or day_of_month not in every:
        return None
    if hour == "*" and day_of_week in every:
        return Duration.hours(1)
    if not _SINGLE.match(hour):
        return None
    if day_of_week in every:
        return Duration.days(1)
    return Duration.days(7) if _SINGLE.match(day_of_week) else None


def missing_run_problems(
    schedule: scheduler.ScheduleExpression | None, window: Duration | None
) -> tuple[Duration | None, list[str]]:
    """The missing-run alarm's window, and every problem with it.

    Args:
        schedule: The scoring schedule, if any.
        window: The window given, if any.
    """
    if schedule is None:
        if window is not None:
            return None, ["missing_run_window is given without schedule; a run is only expected on a schedule"]
        return None, []
    if window is None:
        period = schedule_period(schedule)
        if period is None:
            return None, [
                f"the schedule {schedule.expression_string!r} has no single period to expect a run in; pass "
                "missing_run_window=Duration.hours(...) (the longest gap between two runs, plus slack)"
            ]
        window = Duration.seconds(period.to_seconds() + DEFAULT_MISSING_RUN_SLACK.to_seconds())
    seconds = window.to_seconds()
    if Token.is_unresolved(seconds):
        return window, []
    if not 3600 <= seconds <= _MAX_WINDOW_SECONDS:
        return None, [
            f"missing_run_window ({window.to_human_string()}) must be from 1 hour to 7 days (CloudWatch "
            "evaluates an alarm over at most 7 days); use a shorter schedule or a window within that"
        ]
    return window, []
