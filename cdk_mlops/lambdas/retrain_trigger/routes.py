"""Routes of a shared retrain trigger: one function, queue and table for many pipelines.

A trigger with ``ROUTES_PARAMETER_PATH`` serves every pipeline that has a route under that SSM
Parameter Store path: one ``String`` parameter per pipeline, ``<path>/<pipeline name>``, whose
value is a route document (written by ``cdk_mlops.constructs.fleet_trigger.RetrainRoute``)::

    {"format": 1,
     "settings": {"PIPELINE_NAME": "prod-churn", "DATASETS": "[\\"churn\\"]", "MODE": "QUIET_PERIOD", ...},
     "monitoringSchedules": ["prod-churn-data-quality"],
     "driftAlarms": ["prod-churn-drift"]}

``settings`` holds the per-pipeline variables of ``handler.py``'s list (:data:`ROUTE_KEYS`), as
strings; the function's own environment supplies the shared ones (bucket, table, queue, lease).
Each route is read by :meth:`Settings.from_env` over that merge, so a route is checked exactly
like a single trigger's environment.

Which pipelines an event concerns (:meth:`RouteTable.pipelines_for`):

* object created, snapshot finished: every pipeline whose ``DATASETS`` holds the dataset;
* retrain check, pipeline execution status change: the pipeline it names;
* scheduled and manual retrain: ``detail.pipeline`` when given, else every pipeline of ``detail.dataset``;
* drift alarm: the pipelines that list the alarm's name in ``driftAlarms``;
* Model Monitor violation: the pipelines that list its ``monitoringScheduleName``.

Each pipeline then decides on its own share of the batch with its own lock, counters and
idempotency records (the state table's keys carry the pipeline name), so one pipeline's busy
lock, cool-down or failing records never hold back another's.

Standard library only: the SSM reads are the handler's.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from cdk_mlops.datasets import DATASETS_PREFIX
from cdk_mlops.lambdas.retrain_trigger.events import (
    AlarmStateChange,
    Event,
    Ignored,
    ManualRetrain,
    MonitorViolation,
    ObjectCreated,
    PipelineStatusChange,
    RetrainCheck,
    ScheduledRetrain,
    SnapshotFinished,
)
from cdk_mlops.lambdas.retrain_trigger.settings import Settings

#: The route document's format; a reader refuses any other.
ROUTE_FORMAT: Final = 1
#: The variables a route sets for its pipeline. Every other variable is the shared function's.
ROUTE_KEYS: Final = frozenset(
    {
        "PIPELINE_NAME",
        "DATASETS",
        "MODEL_PACKAGE_GROUP_NAME",
        "COMPARE_WITH_CHAMPION",
        "MODE",
        "QUIET_PERIOD_SECONDS",
        "MARKER_NAME",
        "KEY_PREFIX",
        "KEY_SUFFIXES",
        "MIN_OBJECTS",
        "MIN_BYTES",
        "COOLDOWN_SECONDS",
        "MAX_RUNS_PER_DAY",
        "SNAPSHOT_DATASETS",
    }
)
#: Environment variable of a shared trigger: the SSM path its routes are under (no trailing ``/``).
ROUTES_PATH_VARIABLE: Final = "ROUTES_PARAMETER_PATH"
#: Standard SSM parameters hold at most 4 KB; a route must fit in one.
MAX_ROUTE_BYTES: Final = 4096


@dataclass(frozen=True, slots=True)
class Unrouted(Ignored):
    """A well-formed event that no route claims (a pipeline deployed since the routes were read may)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One pipeline's settings and the monitor signals that retrain it."""

    settings: Settings
    monitoring_schedules: tuple[str, ...] = ()
    drift_alarms: tuple[str, ...] = ()


def route_document(
    settings: Mapping[str, str], *, monitoring_schedules: Iterable[str] = (), drift_alarms: Iterable[str] = ()
) -> dict[str, object]:
    """The route document of one pipeline, as :func:`parse_route` reads it."""
    return {
        "format": ROUTE_FORMAT,
        "settings": dict(settings),
        "monitoringSchedules": list(monitoring_schedules),
        "driftAlarms": list(drift_alarms),
    }


def parse_route(name: str, text: str, shared: Mapping[str, str]) -> Route:
    """Read the route of parameter ``name`` (``<path>/<pipeline>``) over the shared environment.

    Raises:
        ValueError: The document is not a route, sets a variable that is not a route's, names
            another pipeline than its parameter, or has a bad value; the message says which.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"route {name}: not JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != ROUTE_FORMAT:
        raise ValueError(f"route {name}: expected a JSON object with format {ROUTE_FORMAT}")
    values = document.get("settings")
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise ValueError(f"route {name}: settings must be an object of strings")
    strays = sorted(set(values) - ROUTE_KEYS)
    if strays:
        raise ValueError(f"route {name}: {strays} are not route settings; a route sets only {sorted(ROUTE_KEYS)}")
    lists = {key: document.get(key, []) for key in ("monitoringSchedules", "driftAlarms")}
    for key, found in lists.items():
        if not isinstance(found, list) or not all(isinstance(v, str) and v for v in found):
            raise ValueError(f"route {name}: {key} must be a list of names")
    own = {k: v for k, v in shared.items() if k not in ROUTE_KEYS}
    try:
        settings = Settings.from_env({**own, **values})
    except (KeyError, ValueError) as exc:
        raise ValueError(f"route {name}: {exc}") from exc
    if name.rsplit("/", 1)[-1] != settings.pipeline_name:
        raise ValueError(f"route {name}: names pipeline {settings.pipeline_name!r}; its parameter must end with it")
    return Route(settings, tuple(lists["monitoringSchedules"]), tuple(lists["driftAlarms"]))


@dataclass(slots=True)
class RouteTable:
    """Every route of a shared trigger, indexed by what events name.

    Attributes:
        routes: By pipeline name, lower-cased (SageMaker lower-cases pipeline ARNs).
        broken: Parameter name to the problem of each route that could not be read.
    """

    routes: dict[str, Route] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)
    _by_dataset: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _by_schedule: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _by_alarm: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def read(cls, parameters: Iterable[tuple[str, str]], shared: Mapping[str, str]) -> RouteTable:
        """The table of ``(parameter name, value)`` pairs; a bad route is kept in ``broken``, never raised."""
        table = cls()
        for name, text in parameters:
            try:
                route = parse_route(name, text, shared)
            except ValueError as exc:
                table.broken[name] = str(exc)
                continue
            table.add(route)
        return table

    def add(self, route: Route) -> None:
        """Index one route."""
        key = route.settings.pipeline_name.casefold()
        self.routes[key] = route
        for dataset in route.settings.datasets:
            self._by_dataset[dataset].append(key)
        for schedule in route.monitoring_schedules:
            self._by_schedule[schedule].append(key)
        for alarm in route.drift_alarms:
            self._by_alarm[alarm].append(key)

    def pipelines_for(self, event: Event, data_bucket: str) -> list[str] | Ignored:
        """The routes (their keys in ``routes``) that ``event`` concerns, or why it concerns none."""
        if isinstance(event, ObjectCreated):
            if event.bucket != data_bucket:
                return Ignored("object in another bucket")
            name, slash, _ = event.key.removeprefix(DATASETS_PREFIX).partition("/")
            if not event.key.startswith(DATASETS_PREFIX) or not slash:
                return Ignored("object outside the datasets")
            return self._found(self._by_dataset.get(name), f"no pipeline watches dataset {name!r}")
        if isinstance(event, SnapshotFinished):
            if event.version is None:
                return Ignored(f"snapshot execution is {event.status}")
            dataset = event.version.dataset
            return self._found(self._by_dataset.get(dataset), f"no pipeline watches dataset {dataset!r}")
        if isinstance(event, RetrainCheck | PipelineStatusChange):
            name = event.pipeline if isinstance(event, RetrainCheck) else event.pipeline_name
            key = name.casefold()
            return self._found([key] if key in self.routes else None, f"no route for pipeline {name!r}")
        if isinstance(event, ScheduledRetrain | ManualRetrain):
            if event.pipeline is not None:
                key = event.pipeline.casefold()
                return self._found([key] if key in self.routes else None, f"no route for pipeline {event.pipeline!r}")
            return self._found(self._by_dataset.get(event.dataset), f"no pipeline watches dataset {event.dataset!r}")
        if isinstance(event, AlarmStateChange):
            return self._found(self._by_alarm.get(event.alarm_name), f"no route lists alarm {event.alarm_name!r}")
        assert isinstance(event, MonitorViolation)
        schedule = event.schedule_name or ""
        return self._found(self._by_schedule.get(schedule), f"no route lists monitoring schedule {schedule!r}")

    @staticmethod
    def _found(keys: list[str] | None, reason: str) -> list[str] | Ignored:
        return list(keys) if keys else Unrouted(reason)
