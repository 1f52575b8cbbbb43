"""Reading a promoted model where it was trained: another account's (or environment's) data bucket.

A model package registered in one environment and served in another keeps its artifacts and
baselines in the data bucket it was trained in. The serving side's roles (the endpoint's, the
monitor's) need read access there, granted by name: the bucket belongs to another stack, often
another account, so no construct reference can cross over.
"""

from __future__ import annotations

import re

from aws_cdk import Arn, ArnFormat, Aws, Token
from aws_cdk import aws_iam as iam

from cdk_mlops.constructs.common import acknowledge_grantee
from cdk_mlops.constructs.data_store_base import bucket_name_problems
from cdk_mlops.datasets import ARTIFACTS_PREFIX
from cdk_mlops.errors import ConfigurationError

__all__ = ["grant_model_source_read"]

_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[^/]+/\d+\Z")


def grant_model_source_read(
    grantee: iam.IGrantable,
    *,
    bucket_name: str,
    model_package_arn: str,
    prefix: str = ARTIFACTS_PREFIX,
) -> iam.Grant:
    """Let ``grantee`` read a promoted model's artifacts and baselines in the data bucket it was trained in.

    For serving in another account or region than the registry's data store: give the
    endpoint's role (``ModelEndpoint.role``), the monitor's (``ModelMonitor.role``) and, with
    explainability, its configuration writer's (``ModelMonitor.analysis_config.role``) read
    access to ``prefix`` of that bucket. The bucket is named, not referenced, so the serving
    stack needs no cross-stack (or cross-region) reference to the data stack; give the store a
    known name with ``VersionedDataStore(bucket_name=...)``.

    The bucket is taken to be in the account and region of ``model_package_arn`` (the registry
    that trained the model). Reads are limited to ``s3:GetObject`` and ``s3:GetObjectVersion``
    under ``prefix`` of that one bucket; ``kms:Decrypt`` to that account's keys in that region,
    used by S3 for that bucket (the key's id is not known on the serving side). The other side
    must admit this account too: ``store.grant_accounts_read([serving_account], prefix=prefix)``
    on the data store adds the bucket and key policy statements. SageMaker reads model artifacts
    from a bucket in the endpoint's own region only, so this serves across accounts in one
    region; across regions, copy (or replicate) the artifacts into a bucket of the serving region
    first and name that bucket here.

    Args:
        grantee: The principal that reads, e.g. ``endpoint.role``.
        bucket_name: The data bucket's name (not an ARN or an ``s3://`` URI).
        model_package_arn: The served model package version, e.g.
            ``arn:aws:sagemaker:eu-west-1:111122223333:model-package/churn-models/3``; a token
            is split at deploy time.
        prefix: The key prefix holding the artifacts and baselines. Default: - ``artifacts/``,
            where a data store keeps them.

    Returns:
        The grant of the S3 read and the KMS decrypt statements together.

    Raises:
        ConfigurationError: for an invalid bucket name, model package ARN or prefix.
    """
    principal = grantee.grant_principal
    where = principal.node.path if hasattr(principal, "node") else "grant_model_source_read"
    problems = bucket_name_problems("bucket_name", bucket_name)
    if not Token.is_unresolved(model_package_arn) and not _PACKAGE_ARN.match(str(model_package_arn)):
        problems.append(
            f"model_package_arn {model_package_arn!r} is not a model package version ARN; use e.g. "
            "'arn:aws:sagemaker:eu-west-1:111122223333:model-package/churn-models/3'"
        )
    if not Token.is_unresolved(prefix) and (
        not prefix or prefix.startswith("/") or not prefix.endswith("/") or "*" in prefix
    ):
        problems.append(f"prefix {prefix!r} must be a key prefix ending in '/' without '*'; use e.g. 'artifacts/'")
    if problems:
        raise ConfigurationError(where, [f"grant_model_source_read: {problem}" for problem in problems])

    package = Arn.split(model_package_arn, ArnFormat.SLASH_RESOURCE_NAME)
    partition, region, account = package.partition, package.region, package.account
    objects = f"arn:{partition}:s3:::{bucket_name}/{prefix}*"
    keys = f"arn:{partition}:kms:{region}:{account}:key/*"
    grant = iam.Grant.add_to_principal(
        grantee=grantee, actions=["s3:GetObject", "s3:GetObjectVersion"], resource_arns=[objects]
    )
    decrypt = iam.Grant.add_to_principal(
        grantee=grantee,
        actions=["kms:Decrypt"],
        resource_arns=[keys],
        conditions={
            "StringEquals": {"kms:ViaService": f"s3.{region}.{Aws.URL_SUFFIX}"},
            # With S3 Bucket Keys the encryption context is the bucket's ARN, else the object's.
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [f"arn:{partition}:s3:::{bucket_name}", objects]},
        },
    )
    acknowledge_grantee(
        grantee,
        f"a promoted model's artifacts and baselines are written per training execution under {prefix} of "
        "the registry environment's data bucket; that bucket's key id is unknown in this environment, so "
        "decryption is limited by condition to S3 reading that bucket",
        resources=(objects, keys),
    )
    return grant.combine(decrypt)
