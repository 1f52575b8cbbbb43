"""What the delivery pipelines' build steps install before they run :mod:`cdk_mlops.delivery_steps`.

The steps need boto3 and this library (its stdlib-only modules; ``--no-deps`` keeps the CDK out
of the step). A checkout that contains the library (this repository, or an app that vendors it)
runs it from there. Otherwise the steps install exactly the copy the app was synthesized with,
read from its installation record (PEP 610 ``direct_url.json``):

* from a package index (no record): ``cdk-mlops==<version>``;
* from a Git URL: ``cdk-mlops @ git+<url>@<commit>``, the very commit, not the branch or tag;
* from an archive URL (``https://.../cdk_mlops-<version>-py3-none-any.whl``): that URL.

A local wheel or directory cannot be reached from CodeBuild. Then, unless the app's directory
holds the library, :func:`default_step_install_commands` refuses at synth and says what to pass
instead, rather than letting every build fail on a release no index has.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Final

from cdk_mlops._version import __version__

__all__ = ["BOTO3_INSTALL", "default_step_install_commands", "library_requirement"]

DISTRIBUTION: Final = "cdk-mlops"
#: The first install command of every step: the AWS SDK the step's commands call.
BOTO3_INSTALL: Final = "python3 -m pip install --quiet --disable-pip-version-check 'boto3>=1.40'"
_PIP: Final = "python3 -m pip install --quiet --disable-pip-version-check --no-deps"


def requirement_from_direct_url(record: Mapping[str, object] | None, *, version: str = __version__) -> str | None:
    """The pip requirement that reinstalls what an installation record describes, or None for a local path.

    Args:
        record: The parsed ``direct_url.json`` of the installed distribution (PEP 610), or None
            when there is none (installed from an index).
        version: The installed version. Default: - this library's.
    """
    if record is None:
        return f"{DISTRIBUTION}=={version}"
    url = str(record.get("url", ""))
    vcs = record.get("vcs_info")
    if isinstance(vcs, Mapping) and vcs.get("vcs") and vcs.get("commit_id"):
        return f"{DISTRIBUTION} @ {vcs['vcs']}+{url}@{vcs['commit_id']}"
    if "archive_info" in record and url.startswith("https://"):
        return f"{DISTRIBUTION} @ {url}"
    return None  # file:// (a local wheel, directory or editable checkout), or a scheme builds cannot use


def library_requirement() -> str | None:
    """The pip requirement for the installed copy of this library, or None when it came from a local path."""
    # A source tree's own `*.egg-info` can shadow the installed record on sys.path, so every
    # record of the name is read, and only a package under site-packages counts as an index install.
    records = [d.read_text("direct_url.json") for d in metadata.distributions(name=DISTRIBUTION)]
    record = next((text for text in records if text), None)
    if record is not None:
        return requirement_from_direct_url(json.loads(record))
    installed = Path(__file__).resolve().parents[3].name in ("site-packages", "dist-packages")
    return requirement_from_direct_url(None) if records and installed else None


def app_contains_library(app_dir: Path) -> bool:
    """Whether ``app_dir`` (the app's checkout) holds the library's package, as this repository does."""
    return (app_dir / "cdk_mlops" / "delivery_steps.py").is_file()


def default_step_install_commands(app_dir: Path | None = None) -> tuple[str, ...] | str:
    """The build steps' install commands, or a problem saying why there is no safe default.

    Args:
        app_dir: The app's directory, which is the checkout the steps run in. Default: - the
            current directory (the CDK CLI runs the app from its ``cdk.json`` folder).

    Returns:
        boto3's install, then the library's: nothing when the checkout holds it, otherwise the
        requirement of the installed copy (:func:`library_requirement`). A string is the problem
        when neither applies; the pipelines raise it as a ``ConfigurationError``.
    """
    directory = Path.cwd() if app_dir is None else app_dir
    requirement = library_requirement()
    if requirement is not None:
        return (BOTO3_INSTALL, f"test -d cdk_mlops || {_PIP} '{requirement}'")
    if app_contains_library(directory):
        return (
            BOTO3_INSTALL,
            "test -d cdk_mlops || { echo 'cdk-mlops is not in this checkout; set step_install_commands' >&2; exit 1; }",
        )
    return (
        f"step_install_commands: none given, and the build steps cannot install cdk-mlops as this app "
        f"has it (from a local path, and {directory} does not contain it); pass the steps' install, "
        "e.g. step_install_commands=[\"python3 -m pip install 'boto3>=1.40' -r requirements.txt\"], "
        "or install cdk-mlops from its Git URL so the steps can install the same commit"
    )
