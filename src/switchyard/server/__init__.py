"""Switchyard server package."""
