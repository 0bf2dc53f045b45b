"""The conversation history service: assemble, close, judge, store.

The derived-state process assembles conversations from stored events; the ingestor
uses the same service to judge and store conversations posted whole.

Stored log events are folded into open conversations. A sweep closes those idle for
CHATLOG_CONVERSATION_IDLE_MINUTES, and shutdown closes them all; each closed
conversation is judged by the sampling rules and, when kept, stored as a record.
On start, conversations that were open when the derived-state process stopped (or crashed) are
rebuilt from the log day files, so a SIGKILL loses none.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiosqlite
import msgspec

from chat_statistics.admission import inadmissible
from ingestor.conversations.assembly import ConversationAssembler, OpenConversation, doc_scores, judge
from ingestor.conversations.sampling import ConversationSampler, SamplingDecision
from ingestor.conversations.store import ConversationStore, conversation_store
from ingestor.conversations.summary import ExtractiveSummarizer, Summarizer
from ingestor.dayfiles import DayFileWriter
from ingestor.decoding import as_utc, instant_problem
from ingestor.records import EncodedRecord
from ingestor.redaction import content_redactor
from shared.errors import ValidationFailed
from shared.layout import StorageLayout, Stream
from shared.privacy import UserHasher, user_hasher
from shared.reader import iter_lines
from shared.settings import Settings
from shared.wire import ConversationIn, ConversationMessage, ConversationRecord, LogRecord

log = logging.getLogger("chatlog.ingestor.conversations")


class ConversationService:
    """Owns the open conversations of a running ingestor."""

    def __init__(
        self,
        layout: StorageLayout,
        store: ConversationStore,
        sampler: ConversationSampler,
        summarizer: Summarizer,
        hasher: UserHasher,
        idle: timedelta,
        redact: Callable[[str], str] | None = None,
        max_open: int = 50_000,
        max_messages: int = 200_000,
        on_closed: Callable[[bool], None] | None = None,
        retention_days: int = 30,
    ) -> None:
        self._layout = layout
        self._store = store
        self._sampler = sampler
        self._summarizer = summarizer
        self._hasher = hasher
        self._idle = idle
        self._redact = redact
        self._max_open = max_open
        self._max_messages = max_messages
        self._on_closed = on_closed
        self._retention_days = retention_days
        self._over_capacity = asyncio.Event()
        self.assembler = ConversationAssembler(layout)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.saved = 0
        self.dropped = 0

    def observe(self, records: Sequence[EncodedRecord]) -> None:
        """Fold freshly stored events into their conversations (cheap, synchronous)."""
        self.assembler.add_read(records)
        if len(self.assembler) > self._max_open or self.assembler.messages > self._max_messages:
            self._over_capacity.set()

    async def recover(self, applied: Mapping[date, int]) -> int:
        """Reopen conversations with events newer than their last record; return how many.

        Only the first ``applied`` lines of yesterday's and today's files are read: the
        lines after them reach the assembler as the line applier follows the files. Lines
        the applier quarantined (``inadmissible``) are left out here too.
        """
        today = self._layout.today()
        days = [(d, p) for d in (today - timedelta(days=1), today)
                if (p := self._layout.day_files(Stream.LOGS, d).readable) is not None]
        tz = self._layout.tz
        for day, path in days:
            # Chunk by chunk, holding each message's place in the file rather than its text:
            # a day of a million lines reopens in bounded memory.
            chunks = _first_records(path, day, applied.get(day, 0))
            while True:
                chunk: list[EncodedRecord] = await asyncio.to_thread(next, chunks, [])
                if not chunk:
                    break
                kept = [item for item in chunk if inadmissible(item.record, tz) is None]
                previous = await self._store.latest(list(dict.fromkeys(i.record.conversation_id for i in kept)))
                self.assembler.add_read(
                    item for item in kept
                    if (last := previous.get(item.record.conversation_id)) is None
                    or item.record.created_at > last.last_message_at
                )
        if self.assembler.open:
            log.info("reopened %d conversations from the day files", len(self.assembler.open))
        return len(self.assembler.open)

    def start(self) -> None:
        """Start the idle sweep."""
        self._task = asyncio.create_task(self._sweep_forever(), name="conversation-sweep")

    async def stop(self) -> None:
        """Stop the sweep and close every open conversation."""
        # Asked to stop, not cancelled: a cancelled sweep would lose the conversations it took.
        self._stopping = True
        self._over_capacity.set()
        if self._task is not None:
            await self._task
        await self._close(self.assembler.take_all())

    async def _sweep_forever(self) -> None:
        interval = max(1.0, min(60.0, self._idle.total_seconds() / 4))
        while not self._stopping:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._over_capacity.wait()
            self._over_capacity.clear()
            if self._stopping:
                return
            try:
                await self.sweep()
            except Exception:
                log.exception("conversation sweep failed; retrying at the next one")

    async def sweep(self, now: datetime | None = None) -> int:
        """Close every conversation idle since ``now - idle``; return how many closed."""
        idle = self.assembler.take_idle((now or datetime.now(UTC)) - self._idle)
        if len(self.assembler) > self._max_open or self.assembler.messages > self._max_messages:
            # Memory stays bounded under a flood: the least recently active close early
            # (a later message reopens them and writes a newer, complete record).
            idle.extend(self.assembler.take_oldest_until(self._max_open * 9 // 10, self._max_messages * 9 // 10))
        try:
            await self._close(idle)
        except Exception:
            # Put them back: they are judged again at the next sweep, nothing is lost.
            for conversation in idle:
                self.assembler.open.setdefault(conversation.conversation_id, conversation)
            raise
        return len(idle)

    async def _close(self, conversations: list[OpenConversation]) -> None:
        if not conversations:
            return
        previous = await self._store.latest([c.conversation_id for c in conversations])
        kept: list[ConversationRecord] = []
        for conversation in conversations:
            base = previous.get(conversation.conversation_id)
            if base is not None:
                _prepend(conversation, base)
            decision, record = judge(conversation, self._sampler, self._summarizer)
            if decision.saved:
                kept.append(record)
            else:
                self._count(saved=False)
        await self._store.save(kept)
        for _ in kept:
            self._count(saved=True)

    async def save_posted(self, posted: ConversationIn) -> SamplingDecision:
        """Judge and (when kept) store a whole conversation posted by a backend.

        ValidationFailed names every message timestamp more than a day ahead or older
        than the conversation retention (the bounds of ``POST /v1/logs``); nothing is stored then.
        """
        conversation = self._from_posted(posted)
        decision, record = judge(conversation, self._sampler, self._summarizer)
        if decision.saved:
            await self._store.save([record])
        self._count(saved=decision.saved)
        return decision

    def _count(self, saved: bool) -> None:
        if saved:
            self.saved += 1
        else:
            self.dropped += 1
        if self._on_closed is not None:
            self._on_closed(saved)

    def _from_posted(self, posted: ConversationIn) -> OpenConversation:
        user_hash = self._hasher.hash(posted.user_id) if posted.user_id is not None else posted.user_hash
        conversation = OpenConversation(posted.conversation_id, posted.collection_name, user_hash)
        now = datetime.now(UTC)
        self._check_timestamps(posted, now)
        for message in posted.messages:
            content = self._redact(message.content) if self._redact else message.content
            docs = list(message.retrieved_docs or ())
            timestamp = as_utc(message.timestamp) if message.timestamp else now
            conversation.append(
                ConversationMessage(
                    role=message.role, content=content, timestamp=timestamp, retrieved_docs=docs,
                    error=bool(message.error), is_regeneration=message.is_regeneration,
                )
            )
            conversation.note_scores(doc_scores(docs))
            conversation.note_scores(message.retrieval_scores or ())
        return conversation


    def _check_timestamps(self, posted: ConversationIn, now: datetime) -> None:
        latest = now + timedelta(days=1)
        oldest = self._layout.day_start(self._layout.today() - timedelta(days=self._retention_days))
        errors = [
            problem
            for number, message in enumerate(posted.messages)
            if message.timestamp is not None
            and (problem := instant_problem(
                0, f"$.messages[{number}].timestamp", message.timestamp, latest, oldest, "conversation"
            )) is not None
        ]
        if errors:
            raise ValidationFailed(errors)


def conversation_service(
    settings: Settings,
    layout: StorageLayout,
    files: DayFileWriter,
    conn: aiosqlite.Connection,
    lock: asyncio.Lock,
    on_closed: Callable[[bool], None] | None = None,
) -> ConversationService:
    """The conversation history service of ``settings`` over one writer connection."""
    return ConversationService(
        layout,
        conversation_store(settings, layout, files, conn, lock),
        ConversationSampler(settings.conversation_sample_rate),
        ExtractiveSummarizer(),
        user_hasher(settings),
        timedelta(minutes=settings.conversation_idle_minutes),
        redact=content_redactor(settings),
        on_closed=on_closed,
        retention_days=settings.conversation_retention_days,
    )


RECOVERY_CHUNK_LINES = 10_000


def _first_records(path: Path, day: date, lines: int) -> Iterator[list[EncodedRecord]]:
    """The records of the first ``lines`` lines of a day file, in chunks, with their places.

    Lines are counted as the follower counts them (complete, non-empty); a plain file's
    records carry their byte offsets, a compressed file's only their line numbers.
    """
    decoder = msgspec.json.Decoder(LogRecord)
    chunk: list[EncodedRecord] = []
    plain = path.name.endswith(".jsonl")
    for number, (offset, line) in enumerate(itertools.islice(_numbered_lines(path, plain), lines)):
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            record = decoder.decode(line)
            chunk.append(EncodedRecord(record, day, b"", number, offset, len(line)) if plain
                         else EncodedRecord(record, day, b"", number))
        if len(chunk) >= RECOVERY_CHUNK_LINES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _numbered_lines(path: Path, plain: bool) -> Iterator[tuple[int, bytes]]:
    """Each complete, non-empty line with its byte offset in a plain file (-1 when compressed)."""
    if not plain:
        for line in iter_lines(path):
            yield -1, line
        return
    offset = 0
    rest = b""
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            data = rest + block
            start = 0
            while (cut := data.find(b"\n", start)) >= 0:
                if cut > start:
                    yield offset + start, data[start:cut]
                start = cut + 1
            offset += start
            rest = data[start:]


def _prepend(conversation: OpenConversation, base: ConversationRecord) -> None:
    """Continue from the last stored record: its messages come first."""
    newer = [m for m in conversation.messages if m.timestamp > base.last_message_at]
    conversation.replace_messages([*base.messages, *newer])
    conversation.user_hash = conversation.user_hash or base.user_hash
    conversation.note_scores(s for m in base.messages for s in doc_scores(m.retrieved_docs))


def encode_decision(decision: SamplingDecision) -> bytes:
    """The 202 body of ``POST /v1/conversations``."""
    return msgspec.json.encode({"saved": decision.saved, "reason": decision.reason})
