"""Switchyard stages package."""
