"""Switchyard pipeline package."""
