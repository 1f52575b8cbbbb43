"""When monitoring jobs run: the schedules Model Monitor accepts, schedule names, and the schedule resource.

Every monitoring type shares this: a :class:`MonitorSchedule` (validated before synth), a fixed
schedule name that metrics, alarms and event patterns can use at synth, and one
``AWS::SageMaker::MonitoringSchedule`` that runs a job definition on the endpoint or batch job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import CfnResource, Duration, Fn, Token
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk_mlops.constructs.model_monitor.monitoring_type import MonitoringType

__all__ = ["MonitorSchedule", "define_schedule", "metric_period", "schedule_name"]

# What Model Monitor accepts (SageMaker ScheduleConfig): hourly, daily at an hour, or every N hours.
_SUPPORTED_CRON = re.compile(r"^cron\(0 (?:\*|(\d{1,2})(?:/(\d{1,2}))?) \? \* \* \*\)\Z")
_ANY_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)\Z")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)\Z")


@dataclass(frozen=True)
class MonitorSchedule:
    """When a monitoring schedule runs: a cron expression Model Monitor accepts (UTC).

    Model Monitor runs at most hourly. It accepts ``cron(0 * ? * * *)``
    (hourly), ``cron(0 H ? * * *)`` (daily at hour H) and ``cron(0 H/N ? * * *)``
    (every N hours from hour H); an execution starts up to 20 minutes after the
    scheduled time and analyses the data captured since the previous one.

    Example::

        MonitorSchedule.hourly()
        MonitorSchedule.daily(hour=3)
        MonitorSchedule.every(hours=6)
        MonitorSchedule("cron(0 * ? * * *)")    # from configuration; validated by the construct

    Attributes:
        expression: The ``ScheduleExpression``.
    """

    expression: str

    @classmethod
    def hourly(cls) -> MonitorSchedule:
        """Every hour, on the hour: the most often Model Monitor runs."""
        return cls("cron(0 * ? * * *)")

    @classmethod
    def daily(cls, *, hour: int = 0) -> MonitorSchedule:
        """Once a day at ``hour`` (0-23, UTC)."""
        return cls(f"cron(0 {hour} ? * * *)")

    @classmethod
    def every(cls, *, hours: int, starting_hour: int = 0) -> MonitorSchedule:
        """Every ``hours`` hours (1-24), the first at ``starting_hour`` (0-23, UTC)."""
        return cls(f"cron(0 {starting_hour}/{hours} ? * * *)")

    @property
    def interval(self) -> Duration | None:
        """Time between two executions, or ``None`` when the expression is a token or not supported."""
        hours = self._interval_hours()
        return None if hours is None else Duration.hours(hours)

    def _interval_hours(self) -> int | None:
        if Token.is_unresolved(self.expression):
            return None
        match = _SUPPORTED_CRON.match(self.expression)
        if match is None:
            return None
        hour, step = match.groups()
        if hour is None:
            return 1
        if step is None:
            return 24
        return int(step)

    def problems(self, where: str) -> list[str]:
        """Why the expression cannot schedule Model Monitor, with the fix; tokens are not checked."""
        text = self.expression
        if Token.is_unresolved(text):
            return []
        fix = (
            "use MonitorSchedule.hourly() (cron(0 * ? * * *)), MonitorSchedule.daily(hour=H) "
            "(cron(0 H ? * * *)) or MonitorSchedule.every(hours=N) (cron(0 H/N ? * * *))"
        )
        if text.strip() == "NOW":
            return [f"{where} 'NOW' runs once; a monitor needs a recurring schedule: {fix}"]
        match = _SUPPORTED_CRON.match(text)
        if match is not None:
            hour, step = match.groups()
            found: list[str] = []
            if hour is not None and not 0 <= int(hour) <= 23:
                found.append(f"{where} {text!r}: the hour must be 0-23")
            if step is not None and not 1 <= int(step) <= 24:
                found.append(f"{where} {text!r}: the step must be 1-24 hours")
            return found
        if self._more_often_than_hourly(text):
            return [
                f"{where} {text!r} runs more often than hourly; Model Monitor runs at most once an hour "
                f"(each execution analyses the last hour of captured data): {fix}"
            ]
        return [f"{where} {text!r} is not a schedule Model Monitor accepts: {fix}"]

    @staticmethod
    def _more_often_than_hourly(text: str) -> bool:
        cron = _ANY_CRON.match(text)
        if cron is not None:
            minutes = cron.group(1)
            return not minutes.isdigit()
        rate = _RATE.match(text)
        return rate is not None and rate.group(2).startswith("minute") and int(rate.group(1)) < 60


def schedule_name(prefix: str, monitoring_type: MonitoringType) -> str:
    """The monitoring schedule's name: ``<prefix>-<type slug>``, e.g. ``churn-data-quality``.

    Names are fixed so that metrics (dimension ``MonitoringSchedule``), alarms
    and event patterns can name the schedule at synth, also from another stack.
    """
    return f"{prefix}-{monitoring_type.slug}"


def metric_period(schedule: MonitorSchedule) -> Duration:
    """The period of the schedule's metrics and alarms: its interval, or an hour when that is unknown at synth."""
    interval = schedule.interval
    return interval if interval is not None else Duration.hours(1)


def define_schedule(
    scope: Construct,
    *,
    name: str,
    endpoint_name: str | None,
    monitoring_type: MonitoringType,
    schedule: MonitorSchedule,
    job_definition: CfnResource,
) -> sagemaker.CfnMonitoringSchedule:
    """The ``Schedule`` under ``scope`` that runs ``job_definition`` on the captured data.

    ``endpoint_name`` is the monitored endpoint, or ``None`` for a batch job (its job
    definition's ``BatchTransformInput`` names the capture).
    """
    return sagemaker.CfnMonitoringSchedule(
        scope,
        "Schedule",
        monitoring_schedule_name=name,
        endpoint_name=endpoint_name,
        monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
            # Job definitions have no name attribute; the name is the last part of the ARN.
            monitoring_job_definition_name=Fn.select(
                1, Fn.split("/", job_definition.get_att("JobDefinitionArn").to_string())
            ),
            monitoring_type=monitoring_type.value,
            schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                schedule_expression=schedule.expression
            ),
        ),
    )
