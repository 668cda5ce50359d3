"""Errors the model raises; the REST and control layers map them to SAYMON error bodies."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class, so callers can catch any rejected model operation."""


class NotFoundError(SimulatorError, LookupError):
    """An object, link, incident or state id that the model does not know (HTTP 404)."""


class InvalidRequestError(SimulatorError, ValueError):
    """An operation that cannot be applied, e.g. an unknown state id (HTTP 400)."""
