"""Hits: cross-matching seized-weapon records on normalised serial, make and calibre keys."""
