"""Errors of the agents, without any notion of how a caller reports them."""

from __future__ import annotations


class MeasurementError(RuntimeError):
    """One measurement failed; the job that asked for it can be retried."""


class DeviceLost(MeasurementError):
    """The device went away (unplugged, offline, not answering); stop working on it."""
