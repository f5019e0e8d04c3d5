"""Switchyard testing package."""
