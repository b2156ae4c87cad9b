"""Language models: any OpenAI-compatible chat-completions server through the `openai` SDK."""
