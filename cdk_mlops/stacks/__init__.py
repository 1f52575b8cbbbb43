"""Stacks and the per-environment Stage of the reference platform."""
