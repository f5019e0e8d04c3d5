"""Switchyard upstream package."""
