"""OTLP spans to stored events, through the same builder and group-commit writer as ``/v1/logs``.

Each chat span is all-or-nothing: a span whose events break the schema or are dated out of
the retention range is rejected alone (counted in the answer's partial success); the rest
are stored. Spans without GenAI data are neither stored nor rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
from aiohttp import web

from ingestor import keys
from ingestor.otlp.decode import SpanView
from ingestor.otlp.genai import Retrieval, chat_events, is_chat, retrieval_of
from ingestor.otlp.pending import best_retrieval
from ingestor.records import EncodedRecord, RecordBuilder
from shared.errors import ValidationFailed
from shared.wire import LogEventIn

log = logging.getLogger("chatlog.otlp")


@dataclass
class Outcome:
    """What became of a request's spans (or log records)."""

    stored_events: int = 0
    # Items (spans, log records) by what became of them: stored, rejected, retrieval, ignored.
    stored: int = 0
    retrieval: int = 0
    ignored: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def reject(self, count: int, problem: str) -> None:
        """Count ``count`` items rejected for ``problem`` (the first few problems are reported)."""
        self.rejected += count
        if len(self.problems) < 5:
            self.problems.append(problem)


async def store_spans(app: web.Application, views: Sequence[SpanView], weights: Sequence[int]) -> Outcome:
    """Map, validate and durably store the chat spans of ``views``; ``weights[i]`` is how many
    items of the request (spans, or log records) view ``i`` stands for."""
    ingest = app[keys.otlp_ingest_key]
    builder = ingest[keys.builder_key]
    pending = app[keys.otlp_pending_key]
    default_collection = app[keys.settings_key].otlp_default_collection
    outcome = Outcome()
    retrievals: dict[str, list[Retrieval]] = {}
    chats: list[tuple[SpanView, int]] = []
    for view, weight in zip(views, weights, strict=True):
        found = retrieval_of(view)
        if found is not None:
            retrievals.setdefault(view.trace_id, []).append(found)
            outcome.retrieval += weight
        elif is_chat(view):
            chats.append((view, weight))
        else:
            outcome.ignored += weight
    chat_traces = {view.trace_id for view, _ in chats}
    # Retrievals whose chat span is not here may meet it in a later request: kept durably.
    await pending.add(r for trace, found in retrievals.items() if trace not in chat_traces for r in found)
    events: list[LogEventIn] = []
    owners: list[int] = []
    for number, (view, weight) in enumerate(chats):
        retrieval = best_retrieval(retrievals.get(view.trace_id, []), view.end_ns) or pending.find(
            view.trace_id, view.end_ns
        )
        try:
            mapped = [msgspec.convert(e, LogEventIn) for e in chat_events(view, retrieval, default_collection)]
        except msgspec.ValidationError as exc:
            outcome.reject(weight, f"span {view.span_id}: {exc}")
            continue
        # A span the mapping cannot read is that span's failure alone, never the request's 5xx.
        except Exception:
            log.exception("OTLP span %s could not be mapped", view.span_id)
            outcome.reject(weight, f"span {view.span_id}: could not be mapped")
            continue
        problems = [p for p in (builder.check_created_at(0, e) for e in mapped) if p is not None]
        if problems:
            outcome.reject(weight, f"span {view.span_id}: {problems[0]['message']}")
            continue
        events.extend(mapped)
        owners.extend([number] * len(mapped))
    records = _build(builder, events, owners, chats, outcome)
    if records:
        await ingest[keys.writer_key].submit(records)
    outcome.stored_events = len(records)
    outcome.stored = sum(weight for _, weight in chats) - outcome.rejected
    return outcome


def _build(builder: RecordBuilder, events: list[LogEventIn], owners: list[int], chats: list[tuple[SpanView, int]],
           outcome: Outcome) -> list[EncodedRecord]:
    try:
        return builder.build(events)
    except ValidationFailed as exc:
        # The day turned between the check above and here: reject those spans, store the rest.
        bad = {owners[entry["index"]] for entry in exc.extra["errors"] if "index" in entry}
        for number in sorted(bad):
            view, weight = chats[number]
            outcome.reject(weight, f"span {view.span_id}: created_at out of range")
        kept = [event for event, owner in zip(events, owners, strict=True) if owner not in bad]
        return builder.build(kept) if kept else []
