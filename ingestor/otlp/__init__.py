"""The OTLP/HTTP receiver: GenAI spans and log records from OpenTelemetry become chatlog events."""
