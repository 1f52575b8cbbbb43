"""The per-environment Stage of the reference platform: data, training and serving stacks."""

from __future__ import annotations

from typing import Any, ClassVar

import aws_cdk as cdk
from constructs import Construct

from cdk_mlops.compliance import apply_tags
from cdk_mlops.config import EnvironmentConfig
from cdk_mlops.guardrails import GuardrailSettings, apply_guardrails
from cdk_mlops.stacks.data_stack import DataStack
from cdk_mlops.stacks.serving_stack import ServingStack
from cdk_mlops.stacks.training_stack import TrainingStack


class MlopsPlatformStage(cdk.Stage):
    """One environment of the reference platform: ``cdk deploy 'Dev/*'`` deploys it.

    Args:
        config: The environment's validated configuration; its ``env`` sets
            the account and region of every stack (environment-agnostic when unset).

    Attributes:
        config: The configuration this stage was built from.
        data: The stack holding the versioned data store.
        training: The stack holding the training pipeline, model registry and retrain trigger.
        serving: The stack holding the model endpoint, or None until a model is approved.
    """

    #: Construct ids of the stacks in every stage, in deployment order; ``Serving``
    #: exists only once the environment has an approved model (``model_package_arn``).
    STACK_IDS: ClassVar[tuple[str, ...]] = ("Data", "Training", "Serving")

    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, env=config.env, **kwargs)
        self.config = config
        self.data = DataStack(self, "Data", config=config)
        self.training = TrainingStack(self, "Training", config=config, data_store=self.data.store)
        self.serving: ServingStack | None = None
        if config.model_package_arn is not None:
            self.serving = ServingStack(
                self,
                "Serving",
                config=config,
                data_store=self.data.store,
                model_package_arn=config.model_package_arn,
                alarm_topic=self.training.training.topic,
            )
        apply_tags(self, config)
        apply_guardrails(self, GuardrailSettings.for_environment(config))
