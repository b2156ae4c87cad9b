"""Adapters: the domain ports implemented over Postgres, AWS, the LLM and the embedding model."""
