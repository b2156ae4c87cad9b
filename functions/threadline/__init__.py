"""Threadline: a serverless backend for multi-tenant support chatbots."""

__version__ = "0.1.0"
