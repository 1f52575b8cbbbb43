"""The shared serving stack: the catalogue's models served in mode ``shared``, on one endpoint's instances."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_mlops.catalogue import CatalogueModel
from cdk_mlops.config import EnvironmentConfig
from cdk_mlops.constructs.common import sagemaker_image_uri
from cdk_mlops.constructs.data_store_base import IDataStore
from cdk_mlops.constructs.model_endpoint import ComponentSettings, SharedModelEndpoint


def shared_endpoint_name(config: EnvironmentConfig) -> str:
    """The environment's shared endpoint: ``<project>-<environment>-models``."""
    return f"{config.project}-{config.name}-models"


class SharedServingStack(cdk.Stack):
    """Serves the catalogue's ``shared`` models with an approved version on one :class:`SharedModelEndpoint`.

    Each model is an inference component named ``<project>-<environment>-models-<model>``, with the
    CPU, memory and copies of its ``serving`` key; the endpoint's instances (``ml.m5.xlarge``, 0
    to 4) follow the copies, so an idle fleet costs nothing. Adding or changing a shared model
    redeploys this stack, not the model's own.

    Args:
        config: The environment.
        models: The catalogue's models served in mode ``shared``, with a version.
        data_store: The environment's data store (the models' artifacts).
        alarm_topic: Notified when a model scales out from zero. Default: - none.

    Attributes:
        endpoint: The shared endpoint; ``endpoint.models`` holds each model by name.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvironmentConfig,
        models: Sequence[CatalogueModel],
        data_store: IDataStore,
        alarm_topic: sns.ITopic | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, termination_protection=config.termination_protection, **kwargs)
        self.endpoint = SharedModelEndpoint(
            self,
            "Endpoint",
            endpoint_name=shared_endpoint_name(config),
            data_store=data_store,
            alarm_topic=alarm_topic,
            removal_policy=config.removal_policy,
        )
        # The registered packages run the training image; the role may pull only its repository.
        image = sagemaker_image_uri(self, "xgboost")
        for model in models:
            served = model.served
            if served is None:
                continue
            self.endpoint.add_model(
                model.name,
                model_name=model.name,
                model_package_arn=served.model_package_arn,
                image_uri=image,
                settings=ComponentSettings(
                    cpu_cores=served.cpu_cores,
                    memory_mb=served.memory_mb,
                    min_copies=served.min_copies,
                    max_copies=served.max_copies,
                    initial_copies=max(served.min_copies, 1),
                ),
            )
        cdk.CfnOutput(self, "EndpointName", value=shared_endpoint_name(config), description="Invoke its models here")
