"""Schemas older versions of the record types were written with (see orchestrator.log.codec)."""
