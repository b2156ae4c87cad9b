"""Threadline: a serverless backend for multi-tenant support chatbots."""

from threadline import startup

__version__ = "0.1.0"

# First thing any handler's import runs: in a Lambda environment, no garbage collection while the function loads.
startup.pause()
