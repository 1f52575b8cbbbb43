"""The library's version, in a module of its own so that any module can read it cheaply.

``cdk_mlops.__version__`` re-exports it; modules inside the package import it from here,
because importing the package root would depend on every module it re-exports.
"""

from __future__ import annotations

__version__ = "0.1.0"
