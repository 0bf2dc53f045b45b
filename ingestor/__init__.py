"""The ingest daemon: durable, batched ingest of chatbot log events."""
