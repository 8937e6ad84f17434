"""Runbooks: what a run does, as phases of steps (see ``base``)."""
