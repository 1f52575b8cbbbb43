"""The ``cdk-mlops`` command line.

Commands are grouped (``cdk-mlops dataset snapshot ...``). Each command
prints one JSON document to stdout; errors go to stderr as one line and exit
with status 2, without a traceback.

Adding a command group: write a function that takes the top-level
subparsers, adds a parser for the group with its own subcommands, and sets
``handler`` on each subcommand with ``set_defaults``; then append it to
:data:`COMMAND_GROUPS`. A handler receives the parsed arguments and returns
a JSON-ready value (printed) or ``None`` (nothing printed); it may raise
:class:`CliError` for a usage problem. Use :func:`aws_client` for boto3
clients so the global ``--endpoint-url`` and ``--region`` apply.

This module imports only the standard library at import time, so
``cdk-mlops --help`` is instant; boto3 is imported when a command needs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cdk_mlops import datasets
from cdk_mlops._version import __version__

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["COMMAND_GROUPS", "CliError", "aws_client", "build_parser", "main"]

#: The name the program is installed as.
PROG = "cdk-mlops"

Handler = Callable[[argparse.Namespace], Any]
#: A function that adds one command group to the top-level subparsers.
if TYPE_CHECKING:
    CommandGroup = Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
else:
    # _SubParsersAction is generic for type checkers only; documentation tools evaluate this one.
    CommandGroup = Callable[[argparse._SubParsersAction], None]


class CliError(Exception):
    """A problem the user can fix; printed without a traceback, exit status 2."""


def _endpoint_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s) URL; use e.g. http://127.0.0.1:5000")
    return value


def aws_client(args: argparse.Namespace, service: str) -> Any:
    """A boto3 client for ``service`` that honours ``--endpoint-url`` and ``--region``.

    Without them, boto3's usual configuration applies (``AWS_ENDPOINT_URL``,
    ``AWS_DEFAULT_REGION``, profiles and so on).
    """
    import boto3

    options: dict[str, str] = {}
    if args.endpoint_url:
        options["endpoint_url"] = args.endpoint_url
    if args.region:
        options["region_name"] = args.region
    return boto3.client(service, **options)  # type: ignore[call-overload]


def _s3(args: argparse.Namespace) -> S3Client:
    client: S3Client = aws_client(args, "s3")
    return client


# --------------------------------------------------------------------------- dataset group


def _summary(manifest: datasets.Manifest) -> dict[str, Any]:
    return {
        "uri": manifest.uri,
        "bucket": manifest.bucket,
        "dataset": manifest.dataset,
        "created_at": manifest.created_at,
        "sha256": manifest.sha256,
        "format": "sharded" if manifest.shards else "single",
        "shards": manifest.shards,
        "objects": len(manifest.entries),
        "total_bytes": manifest.total_bytes,
        "fully_versioned": manifest.fully_versioned,
    }


def _dataset_snapshot(args: argparse.Namespace) -> dict[str, Any]:
    try:
        datasets.check_dataset_name(args.dataset)
    except ValueError as error:
        raise CliError(f"--dataset: {error}") from None
    manifest = datasets.snapshot(
        args.bucket, args.dataset, s3=_s3(args), allow_empty=args.allow_empty, format=args.manifest_format
    )
    return _summary(manifest)


def _dataset_materialize(args: argparse.Namespace) -> dict[str, Any]:
    destination = Path(args.destination)
    s3 = _s3(args) if args.manifest.startswith("s3://") else None
    manifest = datasets.load_manifest(args.manifest, s3=s3)
    if manifest.entries and s3 is None:
        s3 = _s3(args)
    files = datasets.materialize(manifest, destination, s3=s3)
    return {
        "manifest": manifest.uri,
        "sha256": manifest.sha256,
        "destination": str(destination),
        "objects": len(files),
        "total_bytes": manifest.total_bytes,
        "files": [str(path.relative_to(destination.resolve())) for path in files],
    }


def _dataset_diff(args: argparse.Namespace) -> dict[str, Any]:
    remote = any(uri.startswith("s3://") for uri in (args.manifest_a, args.manifest_b))
    result = datasets.diff_uris(args.manifest_a, args.manifest_b, s3=_s3(args) if remote else None)
    return {"a": args.manifest_a, "b": args.manifest_b, **result.to_dict()}


def _add_dataset_group(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = groups.add_parser(
        "dataset",
        help="snapshot, restore and compare dataset versions",
        description="Dataset versions: manifests of the exact S3 object versions under datasets/<name>/.",
    )
    commands = group.add_subparsers(dest="command", required=True, metavar="COMMAND")

    snap = commands.add_parser(
        "snapshot",
        help="record the current object versions of a dataset as a manifest",
        description="List the current versions under datasets/<DATASET>/ and write a manifest to "
        "manifests/<DATASET>/. Prints the manifest URI and digest.",
    )
    snap.add_argument("--bucket", required=True, help="the data store bucket name")
    snap.add_argument("--dataset", required=True, help="the dataset name (one path segment)")
    snap.add_argument("--allow-empty", action="store_true", help="accept a dataset with no objects")
    snap.add_argument(
        "--format",
        dest="manifest_format",
        choices=datasets.MANIFEST_FORMATS,
        default="auto",
        help="single: one JSON document; sharded: an index over gzipped JSON Lines shards; "
        f"auto (default): single up to {datasets.SINGLE_MANIFEST_MAX_ENTRIES:,} objects, sharded above",
    )
    add_aws_options(snap)
    snap.set_defaults(handler=_dataset_snapshot)

    mat = commands.add_parser(
        "materialize",
        help="download exactly the object versions a manifest lists",
        description="Download every object version listed in MANIFEST_URI into DEST, verifying each.",
    )
    mat.add_argument("manifest", metavar="MANIFEST_URI", help="s3://bucket/manifests/... or a local manifest file")
    mat.add_argument("destination", metavar="DEST", help="directory to write to (created if missing)")
    add_aws_options(mat)
    mat.set_defaults(handler=_dataset_materialize)

    cmp_ = commands.add_parser(
        "diff",
        help="compare two manifests",
        description="Print the keys added, removed and changed from URI_A to URI_B.",
    )
    cmp_.add_argument("manifest_a", metavar="URI_A", help="the older manifest (s3:// URI or local file)")
    cmp_.add_argument("manifest_b", metavar="URI_B", help="the newer manifest (s3:// URI or local file)")
    add_aws_options(cmp_)
    cmp_.set_defaults(handler=_dataset_diff)


#: Every command group, in help order. Append to add a group (e.g. ``local``).
def _add_local_group(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Listed for --help only: main() hands everything after `local` to the local-AWS tool.
    subparsers.add_parser(
        "local", help="the embedded local AWS for development: up, down, status, deploy, demo, destroy"
    )


def _local(arguments: Sequence[str]) -> int:
    from cdk_mlops.local.__main__ import main as local_main

    return local_main(list(arguments))


COMMAND_GROUPS: list[CommandGroup] = [_add_dataset_group, _add_local_group]


def add_aws_options(parser: argparse.ArgumentParser, *, default: Any = argparse.SUPPRESS) -> None:
    """``--endpoint-url`` and ``--region``, accepted before the group and after a command alike.

    Args:
        parser: The parser to add them to.
        default: Their value when not given. Default: - none set, so a command's parser keeps
            what the options before the group set (argparse would overwrite it with None).
    """
    parser.add_argument(
        "--endpoint-url",
        type=_endpoint_url,
        default=default,
        help="send AWS requests to this http(s) URL (e.g. a local moto server); default: boto3's configuration",
    )
    parser.add_argument("--region", default=default, help="AWS region; default: boto3's configuration")


def build_parser(groups: Sequence[CommandGroup] | None = None) -> argparse.ArgumentParser:
    """The argument parser with the global options and every command group.

    Args:
        groups: The command groups to add. Default: - :data:`COMMAND_GROUPS`.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="cdk-mlops: dataset versions and developer tools for the cdk-mlops platform.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_aws_options(parser, default=None)
    subparsers = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    for add_group in COMMAND_GROUPS if groups is None else groups:
        add_group(subparsers)
    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [CliError, datasets.DatasetVersionError, ValueError, OSError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 is required by every AWS command
        return tuple(errors)
    return (*errors, ClientError, BotoCoreError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Args:
        argv: The arguments without the program name. Default: - ``sys.argv[1:]``.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["local"]:
        return _local(arguments[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:  # argparse exits on --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    handler: Handler = args.handler
    try:
        result = handler(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except _known_errors() as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if result is not None:
        json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
