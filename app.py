#!/usr/bin/env python3
"""The reference MLOps platform: one Stage per environment in cdk.json."""

import aws_cdk as cdk

from cdk_mlops.compliance import synth_app
from cdk_mlops.config import CONTEXT_KEY, load_environments
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.stacks.stage import build_platform

app = cdk.App()
try:
    environments = load_environments(app.node.try_get_context(CONTEXT_KEY))
except ConfigurationError as error:
    # One clear message and a non-zero exit; a traceback would bury it.
    raise SystemExit(f"cdk-mlops: invalid configuration\n{error}") from None
build_platform(app, environments)
synth_app(app)
