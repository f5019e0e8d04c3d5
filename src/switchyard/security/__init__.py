"""Switchyard security package."""
