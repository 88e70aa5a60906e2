"""Trace requests: the ITI tracing workflow between a requesting and a requested agency."""
