"""The retrain trigger's settings: the names it shares with the pipeline and the construct, its
modes and trigger kinds, and :class:`Settings`, read and checked from the function's environment.

Standard library only, like ``core``, which re-exports every name here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final

from cdk_mlops.champion import BASELINE_CONSTRAINTS_URI, CHAMPION_METRIC
from cdk_mlops.datasets import DATASETS_PREFIX, dataset_name_problems

# --- Names shared with the training pipeline and the construct ---------------------------------

#: Pipeline parameter: ``s3://`` URI of the dataset manifest to train on.
PARAM_INPUT_MANIFEST_URI: Final = "InputManifestUri"
#: Pipeline parameter: SHA-256 digest of the manifest (the data version's identity).
PARAM_MANIFEST_SHA256: Final = "ManifestSha256"
#: Pipeline parameter: a short, sortable data version label (``<UTC time>-<digest prefix>``).
PARAM_DATA_VERSION: Final = "DataVersion"
#: Pipeline parameter: why this execution was started, for lineage.
PARAM_TRIGGER_REASON: Final = "TriggerReason"
#: Pipeline parameter: the approved model's metric, which the new one must beat (``0``: the first model).
PARAM_CHAMPION_METRIC: Final = CHAMPION_METRIC
#: Pipeline parameter: the approved model's data-quality constraints, which new data is validated against.
PARAM_BASELINE_CONSTRAINTS_URI: Final = BASELINE_CONSTRAINTS_URI
#: Every parameter the trigger passes, in order (``BaselineConstraintsUri`` only when the champion has one).
PIPELINE_PARAMETER_NAMES: Final = (
    PARAM_INPUT_MANIFEST_URI,
    PARAM_MANIFEST_SHA256,
    PARAM_DATA_VERSION,
    PARAM_TRIGGER_REASON,
    PARAM_CHAMPION_METRIC,
    PARAM_BASELINE_CONSTRAINTS_URI,
)

#: SQS delays a message by at most 15 minutes; longer waits chain several checks.
MAX_DELAY_SECONDS: Final = 900
#: Pipeline parameter values are limited to 1024 characters.
MAX_PARAMETER_LENGTH: Final = 1024
#: ``PipelineExecutionDescription`` is limited to 3072 characters.
MAX_DESCRIPTION_LENGTH: Final = 3072

#: The namespace of the ``Decisions`` metric unless ``METRICS_NAMESPACE`` names another.
DEFAULT_METRICS_NAMESPACE: Final = "CdkMlops/RetrainTrigger"

_DISPLAY_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9]+")


class Mode(StrEnum):
    """When new objects make a dataset ready to train."""

    QUIET_PERIOD = "QUIET_PERIOD"
    """Once no new object arrived for the quiet period (a drop is complete when it goes quiet)."""
    COMMIT_MARKER = "COMMIT_MARKER"
    """Only when a marker object (``_SUCCESS``) lands under the dataset; other objects never start a run."""


class TriggerKind(StrEnum):
    """Why a run is wanted. The value orders merging: a stronger kind replaces a weaker pending one."""

    DATA = "data"
    SNAPSHOT = "snapshot"
    """A dataset snapshot finished (datasets versioned by ``InventorySnapshot``)."""
    SCHEDULED = "scheduled"
    DRIFT = "drift"
    MANUAL = "manual"

    @property
    def priority(self) -> int:
        return _PRIORITY[self]


_PRIORITY: Final = {
    TriggerKind.DATA: 1,
    TriggerKind.SNAPSHOT: 1,
    TriggerKind.SCHEDULED: 2,
    TriggerKind.DRIFT: 3,
    TriggerKind.MANUAL: 4,
}


class DecisionKind(StrEnum):
    """The ``decision`` field of log lines and the ``Decision`` metric dimension."""

    STARTED = "started"
    PENDING = "pending"
    WAITING = "waiting"
    DEDUPLICATED = "deduplicated"
    IGNORED = "ignored"
    INVALID = "invalid"
    RELEASED = "released"
    FAILED = "failed"


# --- Settings -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The trigger's configuration, read from the function's environment on every invocation.

    See the module docstring of ``handler.py`` for each variable.
    """

    pipeline_name: str
    data_bucket: str
    datasets: tuple[str, ...]
    state_table: str
    queue_url: str
    model_package_group: str
    mode: Mode = Mode.QUIET_PERIOD
    quiet_period: timedelta = timedelta(minutes=15)
    marker_name: str = "_SUCCESS"
    key_prefix: str = ""
    key_suffixes: tuple[str, ...] = ()
    min_objects: int = 0
    min_bytes: int = 0
    cooldown: timedelta = timedelta(hours=1)
    max_runs_per_day: int = 4
    idempotency_ttl: timedelta = timedelta(days=90)
    lease: timedelta = timedelta(minutes=5)
    lock_recheck: timedelta = timedelta(minutes=15)
    lock_grace: timedelta = timedelta(minutes=2)
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    compare_with_champion: bool = True
    snapshot_state_machine: str = ""
    snapshot_datasets: tuple[str, ...] = ()

    def snapshotted(self, dataset: str) -> bool:
        """Whether ``dataset``'s versions are the snapshots of ``SNAPSHOT_STATE_MACHINE_ARN`` (not a listing)."""
        return dataset in self.snapshot_datasets

    @property
    def primary_dataset(self) -> str:
        """The dataset that drift alarms retrain (the first of ``DATASETS``)."""
        return self.datasets[0]

    def dataset_of(self, key: str) -> str | None:
        """The configured dataset whose prefix holds ``key``, if any."""
        if not key.startswith(DATASETS_PREFIX):
            return None
        name, slash, _ = key[len(DATASETS_PREFIX) :].partition("/")
        return name if slash and name in self.datasets else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from environment variables.

        Raises:
            KeyError: A required variable is missing or empty; the message names every one.
            ValueError: A variable has a bad value; the message names it, quotes the
                value and says what is expected.
        """
        compare_text = environ.get("COMPARE_WITH_CHAMPION", "true").strip().lower()
        compare = compare_text != "false"
        required: tuple[str, ...] = ("PIPELINE_NAME", "DATA_BUCKET", "DATASETS", "STATE_TABLE", "QUEUE_URL")
        # Without the champion lookup there is no group to look in.
        required += ("MODEL_PACKAGE_GROUP_NAME",) if compare else ()
        missing = [name for name in required if not environ.get(name, "").strip()]
        if missing:
            raise KeyError(f"missing required environment variable(s): {', '.join(missing)}")
        reader = _EnvReader(environ)
        if compare_text not in ("true", "false"):
            reader.problems.append(f"COMPARE_WITH_CHAMPION={compare_text!r}: expected true or false")
        datasets = reader.datasets("DATASETS")
        mode_text = environ.get("MODE", Mode.QUIET_PERIOD.value).strip().upper()
        try:
            mode = Mode(mode_text)
        except ValueError:
            reader.problems.append(f"MODE={mode_text!r}: expected one of {', '.join(m.value for m in Mode)}")
            mode = Mode.QUIET_PERIOD
        marker = environ.get("MARKER_NAME", "_SUCCESS").strip()
        if not marker or "/" in marker:
            reader.problems.append(f"MARKER_NAME={marker!r}: expected an object name without '/'")
        key_prefix = environ.get("KEY_PREFIX", "").strip()
        if key_prefix.startswith("/"):
            reader.problems.append(f"KEY_PREFIX={key_prefix!r}: expected a prefix relative to the dataset, no '/'")
        snapshot_machine = environ.get("SNAPSHOT_STATE_MACHINE_ARN", "").strip()
        snapshotted = reader.names("SNAPSHOT_DATASETS")
        strays = [name for name in snapshotted if name not in datasets]
        if strays:
            reader.problems.append(f"SNAPSHOT_DATASETS: {strays!r} are not in DATASETS; snapshot only watched datasets")
        if bool(snapshot_machine) != bool(snapshotted):
            reader.problems.append(
                "SNAPSHOT_STATE_MACHINE_ARN and SNAPSHOT_DATASETS go together: set both (datasets versioned by "
                "the snapshot state machine) or neither"
            )
        elif snapshot_machine and not (snapshot_machine.startswith("arn:") and ":stateMachine:" in snapshot_machine):
            reader.problems.append(f"SNAPSHOT_STATE_MACHINE_ARN={snapshot_machine!r}: expected a state machine ARN")
        settings = cls(
            pipeline_name=environ["PIPELINE_NAME"].strip(),
            data_bucket=environ["DATA_BUCKET"].strip(),
            datasets=datasets,
            state_table=environ["STATE_TABLE"].strip(),
            queue_url=environ["QUEUE_URL"].strip(),
            model_package_group=environ.get("MODEL_PACKAGE_GROUP_NAME", "").strip() if compare else "",
            mode=mode,
            quiet_period=reader.seconds("QUIET_PERIOD_SECONDS", 900, minimum=0, maximum=7 * 86400),
            marker_name=marker,
            key_prefix=key_prefix,
            key_suffixes=reader.names("KEY_SUFFIXES"),
            min_objects=reader.integer("MIN_OBJECTS", 0, minimum=0),
            min_bytes=reader.integer("MIN_BYTES", 0, minimum=0),
            cooldown=reader.seconds("COOLDOWN_SECONDS", 3600, minimum=0, maximum=30 * 86400),
            max_runs_per_day=reader.integer("MAX_RUNS_PER_DAY", 4, minimum=0),
            idempotency_ttl=reader.seconds("IDEMPOTENCY_TTL_SECONDS", 90 * 86400, minimum=3600),
            lease=reader.seconds("LEASE_SECONDS", 300, minimum=30, maximum=3600),
            lock_recheck=reader.seconds("LOCK_RECHECK_SECONDS", 900, minimum=60, maximum=MAX_DELAY_SECONDS),
            lock_grace=reader.seconds("LOCK_GRACE_SECONDS", 120, minimum=0, maximum=3600),
            metrics_namespace=environ.get("METRICS_NAMESPACE", "").strip() or DEFAULT_METRICS_NAMESPACE,
            compare_with_champion=compare,
            snapshot_state_machine=snapshot_machine,
            snapshot_datasets=snapshotted,
        )
        if reader.problems:
            raise ValueError("invalid environment: " + "; ".join(reader.problems))
        return settings


class _EnvReader:
    """Reads typed values and collects every problem, so one error names them all."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r}: expected an integer")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and <= {maximum}" if maximum is not None else ""
            self.problems.append(f"{name}={raw!r}: expected an integer >= {minimum}{upper}")
            return default
        return value

    def seconds(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> timedelta:
        return timedelta(seconds=self.integer(name, default, minimum=minimum, maximum=maximum))

    def names(self, name: str) -> tuple[str, ...]:
        """A comma-separated list or a JSON array of strings."""
        raw = self.environ.get(name, "").strip()
        if not raw:
            return ()
        if raw.startswith("["):
            try:
                values = json.loads(raw)
            except ValueError:
                values = None
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                self.problems.append(f"{name}={raw!r}: expected a JSON array of strings or a comma-separated list")
                return ()
            items = [v.strip() for v in values]
        else:
            items = [v.strip() for v in raw.split(",")]
        return tuple(dict.fromkeys(v for v in items if v))

    def datasets(self, name: str) -> tuple[str, ...]:
        values = self.names(name)
        for value in values:
            self.problems.extend(f"{name}: {problem}" for problem in dataset_name_problems(value))
        if not values:
            self.problems.append(f"{name}={self.environ.get(name, '')!r}: expected at least one dataset name")
            return ("invalid",)
        return values


def dataset_prefix(name: str) -> str:
    """``datasets/<name>/`` for a name already validated (``cdk_mlops.datasets.dataset_prefix`` checks it again)."""
    return f"{DATASETS_PREFIX}{name}/"
