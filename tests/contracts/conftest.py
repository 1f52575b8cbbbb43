"""Fixtures of the AWS-contract checks: the platform synthesized in several layouts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.contracts.variants import SynthesizedVariant, synthesized


@pytest.fixture(scope="session")
def synthesized_variants() -> Callable[[str], SynthesizedVariant]:
    """The variants of :data:`tests.contracts.variants.VARIANTS` by name, each synthesized on first use.

    A variant is synthesized at most once per session (per pytest-xdist worker); the
    ``serving`` variant is the session ``platform`` fixture's synthesis.
    """
    return synthesized


@pytest.fixture(scope="class")
def variant(
    request: pytest.FixtureRequest, synthesized_variants: Callable[[str], SynthesizedVariant]
) -> SynthesizedVariant:
    """The variant named by the test class's ``variant_name`` attribute."""
    name: str = request.cls.variant_name
    return synthesized_variants(name)
