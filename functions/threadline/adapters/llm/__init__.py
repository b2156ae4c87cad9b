"""Adapters over an OpenAI-compatible LLM (the openai SDK)."""
