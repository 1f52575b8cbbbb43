#!/usr/bin/env python3
"""The reference MLOps platform: one Stage per environment in cdk.json."""

import aws_cdk as cdk

from cdk_mlops.compliance import synth_app
from cdk_mlops.config import CONTEXT_KEY, TOOLING_KEY, load_environments, load_tooling
from cdk_mlops.errors import ConfigurationError
from cdk_mlops.stacks.stage import build_platform

app = cdk.App()
try:
    environments = load_environments(app.node.try_get_context(CONTEXT_KEY))
    tooling = load_tooling(app.node.try_get_context(TOOLING_KEY))
    build_platform(app, environments, tooling=tooling)
except ConfigurationError as error:
    # One clear message and a non-zero exit; a traceback would bury it.
    raise SystemExit(f"cdk-mlops: invalid configuration\n{error}") from None
synth_app(app)
