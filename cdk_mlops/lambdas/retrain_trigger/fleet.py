"""Lambda handler of a shared retrain trigger: one queue in, at most one run per data version of each pipeline out.

Entry point: ``cdk_mlops.lambdas.retrain_trigger.fleet.handler``, the function of
:class:`cdk_mlops.constructs.fleet_trigger.FleetRetrainTrigger`. Each pipeline it serves has a route,
one SSM parameter under ``ROUTES_PARAMETER_PATH`` (``routes.py`` describes the document). For each
batch the handler finds the pipelines each record concerns and hands every pipeline its share, which
:class:`handler.BatchRun` decides on exactly as a single trigger does: the same batching, quiet
period, lock, cool-down, daily cap and idempotency records, kept per pipeline in the one table.

Environment (see ``handler.py`` for each variable): ``ROUTES_PARAMETER_PATH``, ``DATA_BUCKET``,
``STATE_TABLE`` and ``QUEUE_URL`` are required; ``LEASE_SECONDS``, ``IDEMPOTENCY_TTL_SECONDS``,
``LOCK_RECHECK_SECONDS``, ``LOCK_GRACE_SECONDS``, ``METRICS_NAMESPACE`` and
``SNAPSHOT_STATE_MACHINE_ARN`` are shared by every route. ``ROUTES_MAX_AGE_SECONDS`` [300] is how
long a warm function keeps the routes it read.

Reading the routes costs one ``GetParametersByPath`` call per 10 pipelines, once per
``ROUTES_MAX_AGE_SECONDS`` per warm function, so it grows linearly with the pipelines: about 100
calls every 5 minutes per concurrent function for 1,000. A record that no route claims makes the
handler read the routes again first (at most every 30 s), so a pipeline deployed a moment ago
gets its first data drop. A record that no freshly read route claims is logged and deleted, as a
single trigger deletes what is not for it; one that arrives less than 30 s after the last read
is handed back instead, and SQS brings it back after the visibility timeout, when the routes are
read again. While a route cannot be read (``ERROR`` line ``broken route``),
such records are handed back instead, and end in the dead-letter queue if it is not fixed: they
may be that pipeline's.

A record two pipelines share (an object of a dataset both watch) is handed back when either
pipeline fails it; its retry is counted again by the one that had succeeded (its change counters,
which only matter for ``MIN_OBJECTS`` and ``MIN_BYTES``), and never starts a second run, since a
start is once per data version.

IAM: what ``handler.py`` lists, for the pipelines of the routes, plus ``ssm:GetParametersByPath``
on the path.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import boto3

from cdk_mlops.lambdas.retrain_trigger import handler as single
from cdk_mlops.lambdas.retrain_trigger.events import Ignored, Invalid, Parsed, parse_record
from cdk_mlops.lambdas.retrain_trigger.log import logger, publish_decisions
from cdk_mlops.lambdas.retrain_trigger.routes import ROUTES_PATH_VARIABLE, RouteTable, Unrouted
from cdk_mlops.lambdas.retrain_trigger.settings import DEFAULT_METRICS_NAMESPACE, DecisionKind

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

#: The shared variables every route needs.
REQUIRED: Final = (ROUTES_PATH_VARIABLE, "DATA_BUCKET", "STATE_TABLE", "QUEUE_URL")
#: A record no route claims reloads the routes at most this often.
RELOAD_INTERVAL: Final = timedelta(seconds=30)


@cache
def _ssm() -> SSMClient:
    return boto3.client("ssm", config=single.CLIENT_CONFIG)


@dataclass(slots=True)
class _Loaded:
    path: str
    table: RouteTable
    at: datetime


_cached: dict[str, _Loaded] = {}


def reset() -> None:
    """Forget the cached client and routes (tests create them inside each moto context)."""
    _ssm.cache_clear()
    _cached.clear()


def read_routes(path: str, shared: Mapping[str, str]) -> RouteTable:
    """Every route under ``path``; a route that cannot be read is logged and kept in ``broken``."""
    pairs: list[tuple[str, str]] = []
    for page in _ssm().get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=False):
        pairs += [(p["Name"], p["Value"]) for p in page.get("Parameters", []) if "Name" in p and "Value" in p]
    table = RouteTable.read(pairs, shared)
    for name, problem in table.broken.items():
        logger.error("broken route", parameter=name, reason=problem, decision=DecisionKind.FAILED.value)
    logger.info("routes read", path=path, routes=len(table.routes), broken=len(table.broken))
    return table


def _routes(path: str, shared: Mapping[str, str], now: datetime, *, refresh: bool) -> tuple[RouteTable, bool]:
    """The routes, read again when stale (or, with ``refresh``, older than :data:`RELOAD_INTERVAL`).

    Returns:
        The table, and whether it was read by this call.
    """
    loaded = _cached.get(path)
    max_age = timedelta(seconds=_max_age(shared))
    stale = loaded is None or now - loaded.at >= max_age or now < loaded.at
    if refresh and loaded is not None and now - loaded.at >= RELOAD_INTERVAL:
        stale = True
    if loaded is None or stale:
        loaded = _cached[path] = _Loaded(path, read_routes(path, shared), now)
        return loaded.table, True
    return loaded.table, False


def _max_age(shared: Mapping[str, str]) -> int:
    raw = shared.get("ROUTES_MAX_AGE_SECONDS", "").strip()
    if not raw:
        return 300
    if not raw.isdigit() or not 0 <= int(raw) <= 3600:
        raise ValueError(f"ROUTES_MAX_AGE_SECONDS={raw!r}: expected an integer from 0 to 3600")
    return int(raw)


def _shared_environment(environ: Mapping[str, str]) -> dict[str, str]:
    missing = [name for name in REQUIRED if not environ.get(name, "").strip()]
    if missing:
        raise KeyError(f"missing required environment variable(s): {', '.join(missing)}")
    _max_age(environ)
    return dict(environ)


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> single.SqsBatchResponse:
    """Handle a batch of SQS records for every pipeline with a route; return the ids of those to retry.

    A direct invocation with a single EventBridge event is a batch of one, as for the single trigger.
    """
    try:
        shared = _shared_environment(os.environ)
    except (KeyError, ValueError) as exc:
        logger.error("invalid configuration; the batch is retried", error=str(exc), decision=DecisionKind.FAILED.value)
        raise
    found = event.get("Records") if isinstance(event, Mapping) else None
    direct = not isinstance(found, list)
    records: list[Any] = found if isinstance(found, list) else [single.direct_record(event)]
    now = single._now()
    handed_back = _dispatch([parse_record(record) for record in records], shared, context, now)
    if direct and handed_back:
        raise RuntimeError(f"the event could not be handled: {handed_back[0]}")
    return single.batch_response(records, frozenset(handed_back), context)


def _dispatch(parsed: list[tuple[str, Parsed]], shared: Mapping[str, str], context: Any, now: datetime) -> list[str]:
    path, bucket = shared[ROUTES_PATH_VARIABLE].strip(), shared["DATA_BUCKET"].strip()
    table, fresh = _routes(path, shared, now, refresh=False)
    routed = _route(parsed, table, bucket)
    if not fresh and any(isinstance(target, Unrouted) for _, _, target in routed):
        table, fresh = _routes(path, shared, now, refresh=True)
        routed = _route(parsed, table, bucket)
    failed: dict[str, None] = {}
    counts: Counter[str] = Counter()
    shares: defaultdict[str, list[tuple[str, Parsed]]] = defaultdict(list)
    ignored: defaultdict[str, list[str]] = defaultdict(list)
    for record_id, event, target in routed:
        if isinstance(target, list):
            for key in target:
                shares[key].append((record_id, event))
        elif isinstance(event, Invalid):
            logger.warning(
                "invalid message; kept for the dead-letter queue",
                decision="invalid",
                reason=event.reason,
                message_id=record_id,
            )
            counts[DecisionKind.INVALID.value] += 1
            failed[record_id] = None
        elif isinstance(target, Unrouted) and not fresh:
            # The routes were read less than RELOAD_INTERVAL ago: a model deployed since may claim the
            # record. It comes back after the visibility timeout, when the routes can be read again.
            logger.info(
                "no route claims the record yet; it is retried once the routes can be read again",
                decision=DecisionKind.FAILED.value,
                reason=target.reason,
                message_id=record_id,
            )
            counts[DecisionKind.FAILED.value] += 1
            failed[record_id] = None
        elif isinstance(target, Unrouted) and table.broken:
            logger.error(
                "no route claims the record while a route is broken; it is kept until the route is fixed",
                decision=DecisionKind.FAILED.value,
                reason=target.reason,
                broken=sorted(table.broken),
                message_id=record_id,
            )
            counts[DecisionKind.FAILED.value] += 1
            failed[record_id] = None
        else:
            ignored[target.reason].append(record_id)
    for reason, ids in ignored.items():
        counts[DecisionKind.IGNORED.value] += len(ids)
        logger.info("ignored", decision="ignored", reason=reason, records=len(ids), message_ids=ids[:3])
    publish_decisions(shared.get("METRICS_NAMESPACE", "").strip() or DEFAULT_METRICS_NAMESPACE, dict(counts))
    for key, share in shares.items():
        settings = table.routes[key].settings
        logger.append_keys(pipeline=settings.pipeline_name)
        try:
            failed.update(dict.fromkeys(single.BatchRun(settings, context, now).process_parsed(share)))
        finally:
            logger.remove_keys(["pipeline"])
    return [record_id for record_id in failed if record_id]


def _route(
    parsed: list[tuple[str, Parsed]], table: RouteTable, bucket: str
) -> list[tuple[str, Parsed, list[str] | Ignored]]:
    routed: list[tuple[str, Parsed, list[str] | Ignored]] = []
    for record_id, event in parsed:
        if isinstance(event, Invalid):
            routed.append((record_id, event, Ignored(event.reason)))
        elif isinstance(event, Ignored):
            routed.append((record_id, event, event))
        else:
            routed.append((record_id, event, table.pipelines_for(event, bucket)))
    return routed
