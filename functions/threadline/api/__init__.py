"""The HTTP API: one FastAPI app, served by uvicorn (chat, streaming) and Mangum (JSON routes)."""
