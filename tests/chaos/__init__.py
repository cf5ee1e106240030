"""The chaos tier: workflows under random kill -9 of processors and workers."""
