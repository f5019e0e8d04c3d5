"""Fixtures shared by the end-to-end tests."""

from fidelity_bench import bench

__all__ = ["bench"]
