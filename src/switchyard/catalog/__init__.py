"""Switchyard catalog package."""
