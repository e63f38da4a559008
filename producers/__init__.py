"""Typed publishers, one per topic family: what is sent where, and with which guarantees."""
