"""Reusable L3 constructs, one module per capability."""
