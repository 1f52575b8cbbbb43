"""Delivery with CodePipeline: the platform from commit to prod, and models from approval to prod.

Two constructs, both in a tooling account:

* :class:`PlatformDeliveryPipeline`: the platform's own CI/CD, a self-mutating CDK Pipeline
  (CodePipeline V2). Source (CodeConnections or S3) ► synth (``make test``, ``make synth``) ►
  security report ► one stage per environment in order, each followed by post-deploy checks and
  *retrain when ML code changes, and only then* ► a manual approval before every environment
  that requires one (prod always).
* :class:`ModelDeliveryPipeline`: promotes an approved model package. The model registry's
  ``Approved`` event starts it; it deploys the package to each environment in order, tests the
  endpoint with a sample request, waits for approval before prod, and records the package each
  environment runs (an SSM parameter), so that a re-synth of the platform deploys the same model.

What the build steps run is :mod:`cdk_mlops.delivery_steps` (pure decisions plus boto3 calls).
The steps reach into an environment through a :class:`DeliveryAccess` role that the platform
pipeline adds to every stage it deploys: it may describe the stage's stacks, ask the retrain
trigger for a run, read the registry and invoke the endpoint, and nothing else.

Given a ``vpc``, every CodeBuild project of a pipeline runs in it (in the tooling account).
The builds never join an environment's VPC: they act on an environment only through the AWS
APIs its access role allows, so a private environment needs nothing from them.

The modules, each one idea (a module imports only those listed before it):

* :mod:`.inputs`: the repository and the environments the pipelines are given, with their checks.
* :mod:`.access`: the role the build steps assume in an environment, and the approval event.
* :mod:`.shared`: what both pipelines build the same way (artifact store, notifications, build
  specs, network placement, the checks of their common arguments).
* :mod:`.rewrites`: corrections to the policies and actions aws-cdk-lib generates.
* :mod:`.replication`: the cross-region support stacks and the pipeline role's grant on their keys.
* :mod:`.acknowledgments`: the reasons for the wildcards in the generated roles (cdk-nag IAM5).
* :mod:`.platform_pipeline`: :class:`PlatformDeliveryPipeline`.
* :mod:`.model_pipeline`: :class:`ModelDeliveryPipeline`.
"""

from cdk_mlops.constructs.delivery.access import (
    APPROVED,
    COMPLETED,
    MODEL_PACKAGE_STATE_CHANGE,
    DeliveryAccess,
    access_role_name,
)
from cdk_mlops.constructs.delivery.inputs import (
    DEFAULT_SAMPLE_KEY,
    DeliveryTarget,
    EndpointTest,
    ModelDeliveryTarget,
    PipelineSource,
    use_connection_actions,
)
from cdk_mlops.constructs.delivery.install import default_step_install_commands, library_requirement
from cdk_mlops.constructs.delivery.model_pipeline import DEFAULT_BOOTSTRAP_QUALIFIER, ModelDeliveryPipeline
from cdk_mlops.constructs.delivery.platform_pipeline import PlatformDeliveryPipeline
from cdk_mlops.constructs.delivery.shared import DEFAULT_PARAMETER_PREFIX

__all__ = [
    "APPROVED",
    "COMPLETED",
    "DEFAULT_BOOTSTRAP_QUALIFIER",
    "DEFAULT_PARAMETER_PREFIX",
    "DEFAULT_SAMPLE_KEY",
    "MODEL_PACKAGE_STATE_CHANGE",
    "DeliveryAccess",
    "DeliveryTarget",
    "EndpointTest",
    "ModelDeliveryPipeline",
    "ModelDeliveryTarget",
    "PipelineSource",
    "PlatformDeliveryPipeline",
    "access_role_name",
    "default_step_install_commands",
    "library_requirement",
    "use_connection_actions",
]
