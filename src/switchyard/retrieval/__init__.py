"""Switchyard retrieval package."""
