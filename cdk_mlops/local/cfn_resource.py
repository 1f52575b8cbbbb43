"""How a local model joins moto's CloudFormation: the base class and the helpers every model shares.

moto's CloudFormation builds its resource type map from ``CloudFormationModel.__subclasses__()``,
the latest definition of a type winning. This module imports :mod:`moto.cloudformation.parsing`
first, which imports every moto model; a model module that imports this one therefore defines
its classes after moto's, and they replace moto's for the same type. A model subclasses
:class:`ShimResource` (or a moto model) and ``CloudFormationModel`` directly, so that defining
it registers it; :func:`cdk_mlops.local.cfn_shim.install` then clears moto's type-map caches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import moto.cloudformation.parsing  # noqa: F401  (imports every moto model first, so the local models win)
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

#: Resource properties (the ``Properties`` of a template resource, intrinsics resolved).
Props = dict[str, Any]


def s3_backend(account_id: str, region_name: str) -> Any:
    """moto's S3 backend of an account, for the partition of a region."""
    return s3_backends[account_id][get_partition(region_name)]


def cfn_tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    """A resource's ``Tags`` as ``Key``/``Value`` string pairs (none when it has no ``Tags``)."""
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in properties.get("Tags", [])]


def is_true(value: Any) -> bool:
    """A template boolean: ``True`` or any spelling of ``"true"`` (CloudFormation passes strings too)."""
    return value is True or str(value).lower() == "true"


def as_json(document: Any) -> str:
    """A policy or definition document as JSON text; a string is taken to be JSON already."""
    return document if isinstance(document, str) else json.dumps(document)


class ShimResource:
    """Base of the local resource objects: a physical id (what ``Ref`` returns) and attributes.

    A model sets ``TYPE`` (and ``NAME_PROPERTY``, ``ATTRIBUTES``), implements :meth:`provision`
    and :meth:`delete`, and overrides :meth:`modify` when an update can happen in place.
    """

    TYPE: ClassVar[str]
    NAME_PROPERTY: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, physical_resource_id: str, attributes: Mapping[str, Any] | None = None) -> None:
        self.physical_resource_id = physical_resource_id
        self.attributes: dict[str, Any] = dict(attributes or {})

    @classmethod
    def provision(cls, name: str, p: Props, account: str, region: str) -> ShimResource:
        """Create the resource named ``name`` (generated unless ``NAME_PROPERTY`` is set) from properties ``p``."""
        raise NotImplementedError

    def modify(self, name: str, p: Props, account: str, region: str) -> ShimResource:
        """Apply changed properties. Default: replace (delete, then create: names may be fixed)."""
        self.delete(account, region)
        return self.provision(name, p, account, region)

    def delete(self, account_id: str, region_name: str) -> None:
        """Remove the resource; moto's CloudFormation calls this on stack deletion and replacement."""
        raise NotImplementedError

    # moto's CloudFormationModel interface

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.attributes:
            raise UnformattedGetAttTemplateException()
        return self.attributes[attribute_name]

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str, **kwargs: Any
    ) -> ShimResource:
        return cls.provision(resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Props,
        account_id: str,
        region_name: str,
    ) -> ShimResource:
        properties = cloudformation_json.get("Properties", {})
        return original_resource.modify(new_resource_name, properties, account_id, region_name)  # type: ignore[no-any-return]

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Props, account_id: str, region_name: str
    ) -> None:
        return None  # moto calls the object's delete() first; it comes here only without one
