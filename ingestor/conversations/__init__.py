"""Conversation assembly helpers: PII redaction, sampling and summaries."""

from __future__ import annotations
