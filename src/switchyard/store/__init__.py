"""Switchyard store package."""
