"""The per-environment Stage of the reference platform: network, data, training, serving and scoring stacks."""

from __future__ import annotations

from typing import Any, ClassVar

import aws_cdk as cdk
from constructs import Construct

from cdk_mlops.catalogue import CatalogueModel, ServingMode, model_stack_index, shared_endpoint_index
from cdk_mlops.compliance import apply_tags
from cdk_mlops.config import EnvironmentConfig
from cdk_mlops.guardrails import GuardrailSettings, apply_guardrails
from cdk_mlops.stacks.data_stack import DataStack
from cdk_mlops.stacks.models_stack import ModelsStack, model_stack_id
from cdk_mlops.stacks.network_stack import NetworkStack
from cdk_mlops.stacks.scoring_stack import ScoringStack
from cdk_mlops.stacks.serving_stack import ServingStack
from cdk_mlops.stacks.shared_serving_stack import SharedServingStack, shared_serving_stack_id
from cdk_mlops.stacks.training_stack import TrainingStack


class MlopsPlatformStage(cdk.Stage):
    """One environment of the reference platform: ``cdk deploy 'Dev/*'`` deploys it.

    Args:
        config: The environment's validated configuration; its ``env`` sets
            the account and region of every stack (environment-agnostic when unset).

    Attributes:
        config: The configuration this stage was built from.
        network: The stack holding the environment's VPC, or None for an environment without
            one (``network`` is ``"none"``, the default in dev and staging).
        data: The stack holding the versioned data store.
        training: The stack holding the training pipeline, model registry and retrain trigger.
        models: The model stacks of the catalogue (``models``), by index: only those that hold a model.
        shared_serving: The stacks of the catalogue's models served in mode ``shared``, by shared
            endpoint index: only those that hold a model with an approved version.
        serving: The stack holding the model endpoint, or None until a model is approved.
        scoring: The stack holding batch inference, or None without ``batch_inference`` (or a model).
    """

    #: Construct ids of the stacks a stage can hold, in deployment order; ``Network`` exists
    #: only in an environment with a private network (``network``, prod by default), and
    #: ``Serving`` only once it has an approved model (``model_package_arn``), and ``Scoring``
    #: only with an approved model and ``batch_inference``.
    STACK_IDS: ClassVar[tuple[str, ...]] = ("Network", "Data", "Training", "Serving", "Scoring")

    @classmethod
    def stack_ids(cls, config: EnvironmentConfig) -> tuple[str, ...]:
        """The ids of the stacks a stage of ``config`` holds, in deployment order.

        Those of :attr:`STACK_IDS` it holds, with the catalogue's model stacks and shared serving
        stacks (``SharedServing``, or ``SharedServing<NN>`` with several ``shared_endpoints``;
        each while a model is served on it) after ``Training``.
        """
        model = config.model_package_arn is not None
        present = {
            "Network": config.network.private,
            "Serving": model,
            "Scoring": model and config.batch_inference is not None,
        }
        ids = [stack for stack in cls.STACK_IDS if present.get(stack, True)]
        # The model stacks deploy after Training (the fleet trigger and the topic), then the shared
        # endpoint of the catalogue, before Serving.
        after = ids.index("Training") + 1
        models = [model_stack_id(i) for i in sorted(_model_stacks(config))]
        shared = [shared_serving_stack_id(config, i) for i in sorted(_shared_models(config))]
        ids[after:after] = models + shared
        return tuple(ids)

    def __init__(self, scope: Construct, id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, env=config.env, **kwargs)
        self.config = config
        self.network: NetworkStack | None = None
        if config.network.private:
            self.network = NetworkStack(self, "Network", config=config)
        network = self.network.network if self.network else None
        self.data = DataStack(self, "Data", config=config, network=network)
        self.training = TrainingStack(
            self, "Training", config=config, data_store=self.data.store, snapshots=self.data.snapshots, network=network
        )
        self.models: dict[int, ModelsStack] = {}
        fleet = self.training.fleet
        for index, models in sorted(_model_stacks(config).items()):
            assert fleet is not None  # a catalogue has a fleet trigger
            self.models[index] = ModelsStack(
                self,
                model_stack_id(index),
                config=config,
                models=models,
                data_store=self.data.store,
                trigger=fleet,
                topic=self.training.training.topic,
                network=network,
            )
        self.shared_serving: dict[int, SharedServingStack] = {}
        for index, shared in sorted(_shared_models(config).items()):
            self.shared_serving[index] = SharedServingStack(
                self,
                shared_serving_stack_id(config, index),
                config=config,
                models=shared,
                data_store=self.data.store,
                alarm_topic=self.training.training.topic,
                index=index,
            )
        self.serving: ServingStack | None = None
        if config.model_package_arn is not None:
            self.serving = ServingStack(
                self,
                "Serving",
                config=config,
                data_store=self.data.store,
                model_package_arn=config.model_package_arn,
                alarm_topic=self.training.training.topic,
                network=network,
            )
        self.scoring: ScoringStack | None = None
        if config.model_package_arn is not None and config.batch_inference is not None:
            self.scoring = ScoringStack(
                self,
                "Scoring",
                config=config,
                batch=config.batch_inference,
                data_store=self.data.store,
                model_package_arn=config.model_package_arn,
                alarm_topic=self.training.training.topic,
                network=network,
            )
        apply_tags(self, config)
        apply_guardrails(self, GuardrailSettings.for_environment(config))


def _model_stacks(config: EnvironmentConfig) -> dict[int, list[CatalogueModel]]:
    """The catalogue's models by the index of their stack; a stack without a model is left out."""
    stacks: dict[int, list[CatalogueModel]] = {}
    for model in config.models:
        stacks.setdefault(model_stack_index(model.name, config.model_stacks), []).append(model)
    return stacks


def _shared_models(config: EnvironmentConfig) -> dict[int, list[CatalogueModel]]:
    """The catalogue's models served in mode ``shared`` with an approved version, by shared endpoint."""
    endpoints: dict[int, list[CatalogueModel]] = {}
    for model in config.models:
        if model.served is not None and model.served.mode is ServingMode.SHARED:
            endpoints.setdefault(shared_endpoint_index(model.name, config.shared_endpoints), []).append(model)
    return endpoints
