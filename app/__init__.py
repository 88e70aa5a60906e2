"""Tracewire: interagency information exchange on weapons that may reach terrorists."""

__version__ = "0.1.0"
