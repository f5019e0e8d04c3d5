"""Switchyard cli package."""
