"""Powertools Logger, Tracer and Metrics, created once for the whole package."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="threadline")
tracer = Tracer(service="threadline")
metrics = Metrics(namespace="Threadline", service="threadline")
