"""Storage benchmark: zstd levels against the guide's gzip -6 on a generated month of day files.

Run: ``python -m bench.storage`` (``--help`` for the size). One run, on this machine:

- writes ``--days`` days of realistic stored log records (Korean and English RAG
  questions and answers, retrieval metadata, ids) straight to ``data/<day>.jsonl``;
- compresses every day with zstd levels 1, 3, 6, 9 and 19 and with gzip -6 (what the
  guide assumed, with a 70% saving): ratio, saving, compress and decompress MB/s of plain
  text, one core, each day file on its own as the product does;
- runs the product's own ``compress_due`` (frames, fsyncs, the decompress-and-compare
  check) at the chosen level, end to end;
- reads the month back through ``shared.reader`` (``iter_records`` into ``LogRecord``)
  from plain, ``.zst`` and ``.gz`` files: events/s.
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from ingestor.lifecycle.compression import FRAME_BYTES, compress_due
from shared.layout import StorageLayout, Stream
from shared.reader import ReadCounts, iter_records
from shared.settings import Settings
from shared.wire import LogRecord

LEVELS = (1, 3, 6, 9, 19)
COLLECTIONS = ("hr-docs", "it-helpdesk", "legal-kb", "finance-policy", "product-manual")
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "qwen2.5-72b")
KO_TOPICS = (
    "연차 휴가", "재택근무", "법인카드", "출장비 정산", "VPN 접속", "비밀번호 초기화", "육아휴직", "보안 교육",
    "사내 메신저", "경조사 지원", "건강검진", "퇴직연금", "회의실 예약", "노트북 교체", "개인정보 처리",
)
EN_TOPICS = (
    "parental leave", "expense reports", "password reset", "the VPN client", "travel insurance",
    "the onboarding checklist", "performance reviews", "the security training", "laptop refresh",
    "meeting room booking", "data retention", "the bonus policy", "sick leave", "remote work",
)
KO_QUESTIONS = (
    "{t}은 어떻게 신청하나요?", "{t} 관련 규정 알려주세요", "{t} 기준이 작년과 달라졌나요?",
    "{t} 승인까지 보통 며칠 걸리나요?", "{t} 신청서는 어디서 받을 수 있나요?", "{t}이 안 됩니다. 도와주세요",
)
EN_QUESTIONS = (
    "How do I apply for {t}?", "What is the policy on {t}?", "Who approves {t} requests?",
    "Has {t} changed since last year?", "Where can I find the form for {t}?", "{t} is not working for me",
)
KO_SENTENCES = (
    "사내 규정 제{n}조에 따르면 {t}은 인사 시스템에서 신청하며, 팀장 승인 후 확정됩니다.",
    "{t} 관련 문의는 경영지원팀(내선 {n})으로 연락하시면 됩니다.",
    "{t}은 최소 {n}일 전에 신청해야 하며, 긴급한 경우 예외가 인정될 수 있습니다.",
    "2024년 개정안에서는 {t}의 한도가 {n}만원으로 상향되었습니다.",
    "관련 문서 {n}쪽의 표를 참고하시면 세부 기준을 확인하실 수 있습니다.",
    "{t} 처리 결과는 신청 후 {n}영업일 이내에 메일로 안내됩니다.",
    "해당 내용은 부서별로 다를 수 있으므로 소속 팀장님께 한 번 더 확인해 주세요.",
)
EN_SENTENCES = (
    "According to section {n} of the handbook, {t} requests are filed in the HR portal.",
    "Requests for {t} must be submitted at least {n} days in advance.",
    "The limit for {t} was raised to {n} USD in the latest revision.",
    "You can find the details of {t} on page {n} of the policy document.",
    "If your question about {t} is urgent, call the service desk at extension {n}.",
    "Approval for {t} usually takes {n} business days.",
    "Please note that rules for {t} may differ between subsidiaries.",
)

def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Free text on top of the templates, words drawn with Zipf weights like natural language.
KO_WORDS = _words(
    "그리고 하지만 따라서 또한 이번 기존 신규 담당자 부서 팀장 직원 회사 제도 규정 기준 절차 신청 승인 반려 검토 "
    "확인 문의 안내 변경 적용 예외 대상 기간 일정 금액 한도 비용 지원 처리 결과 요청 자료 문서 양식 시스템 "
    "포털 메일 전화 내선 경우 관련 해당 최대 최소 이상 이하 이내 별도 추가 필요 가능 불가 우선 반드시 "
    "조금 다시 바로 먼저 나중에 오늘 내일 이번주 다음달 작년 올해 분기 연간 월간 매월 매주 사전 사후 정산 "
    "영수증 증빙 첨부 제출 등록 수정 삭제 조회 발급 재발급 접속 오류 계정 권한 설정 보안 정책 교육 이수"
)
EN_WORDS = _words(
    "the a of to and in for is on that with as by be this are from or at your you can it will not "
    "request policy manager team employee company rule process approval form portal system email "
    "phone extension case period amount limit cost support result document page section update "
    "before after within usually required optional also however therefore please note first then "
    "again today tomorrow week month quarter year annual monthly receipt attach submit register "
    "change delete view issue access error account permission setting security training complete"
)


def _zipf_weights(count: int) -> list[float]:
    return [1 / (rank + 1) for rank in range(count)]


KO_WEIGHTS = _zipf_weights(len(KO_WORDS))
EN_WEIGHTS = _zipf_weights(len(EN_WORDS))


@dataclass
class Codec:
    """One compressor under test: how it compresses and decompresses a whole day file."""

    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]


def _zstd(level: int) -> Codec:
    cctx = zstandard.ZstdCompressor(level=level, write_checksum=True)
    dctx = zstandard.ZstdDecompressor()

    def compress(data: bytes) -> bytes:
        # The product's layout: independent frames of FRAME_BYTES, cut on lines.
        out = []
        for start in range(0, len(data), FRAME_BYTES):
            out.append(cctx.compress(data[start : start + FRAME_BYTES]))
        return b"".join(out)

    def decompress(data: bytes) -> bytes:
        with dctx.stream_reader(data, read_across_frames=True) as reader:
            return bytes(reader.read())

    return Codec(f"zstd -{level}", compress, decompress)


def _gzip6() -> Codec:
    return Codec("gzip -6", lambda data: gzip.compress(data, compresslevel=6, mtime=0), gzip.decompress)


class Generator:
    """Realistic stored log records: sessions of alternating questions and RAG answers."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.users = [f"{self.rng.getrandbits(256):064x}" for _ in range(3000)]

    def _topic_question(self, korean: bool) -> tuple[str, str]:
        r = self.rng
        topic = r.choice(KO_TOPICS if korean else EN_TOPICS)
        return topic, r.choice(KO_QUESTIONS if korean else EN_QUESTIONS).format(t=topic)

    def _answer(self, korean: bool, topic: str) -> str:
        r = self.rng
        pool = KO_SENTENCES if korean else EN_SENTENCES
        sentences = [r.choice(pool).format(t=topic, n=r.randrange(1, 500)) for _ in range(r.randrange(2, 7))]
        if r.random() < 0.3:  # answers often mix in the other language (product names, quotes)
            other = EN_SENTENCES if korean else KO_SENTENCES
            sentences.append(r.choice(other).format(t=topic, n=r.randrange(1, 500)))
        for _ in range(r.randrange(1, 4)):
            sentences.insert(r.randrange(len(sentences) + 1), self._free_sentence(korean))
        return " ".join(sentences)

    def _free_sentence(self, korean: bool) -> str:
        words = KO_WORDS if korean else EN_WORDS
        weights = KO_WEIGHTS if korean else EN_WEIGHTS
        picked = self.rng.choices(words, weights, k=self.rng.randrange(6, 15))
        return " ".join(picked) + ("입니다." if korean else ".")

    def day(self, day: date, events: int) -> bytes:
        """One day file's bytes: about ``events`` records in time order."""
        r = self.rng
        encoder = msgspec.json.Encoder()
        lines: list[bytes] = []
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        step = 86400 / max(events, 1)
        at = 0.0
        while len(lines) < events:
            session = str(uuid.UUID(int=r.getrandbits(128)))
            user = r.choice(self.users)
            collection = r.choice(COLLECTIONS)
            korean = r.random() < 0.7
            for _ in range(r.randrange(1, 5)):
                topic, question = self._topic_question(korean)
                for kind in ("user", "assistant"):
                    at += step * r.uniform(0.5, 1.5)
                    record: dict[str, Any] = {
                        "log_id": str(uuid.UUID(int=r.getrandbits(128))),
                        "session_id": session, "conversation_id": session,
                        "collection_name": collection, "message_type": kind,
                        "message_content": question if kind == "user" else self._answer(korean, topic),
                        "created_at": start + timedelta(seconds=min(at, 86399)),
                        "user_hash": user, "endpoint": r.choice(("chat", "stream")),
                    }
                    if kind == "assistant":
                        scores = sorted((round(r.uniform(0.3, 0.97), 4) for _ in range(5)), reverse=True)
                        record.update(
                            reasoning_level=r.choice(("low", "medium", "high")), llm_model=r.choice(MODELS),
                            llm_params={"temperature": r.choice((0.2, 0.5, 0.7)), "max_tokens": 2000, "top_p": 0.9},
                            retrieval_info={"query": question, "retrieved_count": 5, "reranking_used": r.random() < 0.5,
                                            "top_scores": scores[:3]},
                            retrieved_docs=[
                                {"doc_id": f"doc-{r.randrange(20000)}", "title": f"{topic} 안내 v{r.randrange(1, 9)}",
                                 "score": s, "source": f"{collection}/{r.randrange(300)}.pdf"}
                                for s in scores[:3]
                            ],
                            performance={"response_time_ms": r.randrange(300, 9000),
                                         "token_count": r.randrange(80, 1800),
                                         "retrieval_time_ms": r.randrange(20, 600)},
                        )
                        if r.random() < 0.02:
                            record.update(status="error", error={"type": "Timeout", "message": "LLM timed out"})
                    lines.append(encoder.encode(msgspec.convert(record, LogRecord)) + b"\n")
        return b"".join(lines[:events])


def _mb_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6 if seconds else float("inf")


def measure_codec(codec: Codec, days: list[bytes]) -> dict[str, float]:
    """Ratio and single-core speeds of one codec over every day file."""
    plain = sum(map(len, days))
    started = time.perf_counter()
    packed = [codec.compress(d) for d in days]
    compress_s = time.perf_counter() - started
    started = time.perf_counter()
    for blob, original in zip(packed, days, strict=True):
        assert len(codec.decompress(blob)) == len(original)
    decompress_s = time.perf_counter() - started
    size = sum(map(len, packed))
    return {
        "bytes": size, "ratio": plain / size, "saving": 1 - size / plain,
        "compress": _mb_s(plain, compress_s), "decompress": _mb_s(plain, decompress_s),
    }


def read_month(layout: StorageLayout) -> tuple[int, float, ReadCounts]:
    """Every record of the month through the one reader: (events, seconds, counts)."""
    counts = ReadCounts()
    paths = [f.readable for f in layout.days(Stream.LOGS).values() if f.readable is not None]
    started = time.perf_counter()
    events = sum(1 for _ in iter_records(paths, LogRecord, counts))
    return events, time.perf_counter() - started, counts


def main() -> None:
    """Generate the month, measure, print the tables (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=3000)
    parser.add_argument("--level", type=int, default=Settings().zstd_level, help="the level run end to end")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="chatlog-bench-storage-"))
    try:
        started = time.perf_counter()
        generator = Generator(args.seed)
        first = date(2026, 1, 1)
        days = [generator.day(first + timedelta(days=i), args.events_per_day) for i in range(args.days)]
        plain = sum(map(len, days))
        events = args.days * args.events_per_day
        print(f"data: {args.days} days x {args.events_per_day} events = {events} events, "
              f"{plain / 1e6:.1f} MB plain ({plain / events:.0f} B/event), generated in "
              f"{time.perf_counter() - started:.1f}s; zstd {zstandard.__version__}, "
              f"zlib {zlib.ZLIB_RUNTIME_VERSION}\n")

        print("| codec | size MB | ratio | saving | compress MB/s | decompress MB/s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for codec in [_gzip6(), *(_zstd(level) for level in LEVELS)]:
            m = measure_codec(codec, days)
            print(f"| {codec.name} | {m['bytes'] / 1e6:.2f} | {m['ratio']:.2f} | {m['saving']:.1%} | "
                  f"{m['compress']:.1f} | {m['decompress']:.0f} |")

        layouts = {}
        for kind in ("plain", "zst", "gz"):
            settings = Settings.for_data_dir(root / kind, log_compress_after_days=1, log_retention_days=3650)
            layout = StorageLayout.from_settings(settings)
            layout.ensure_dirs()
            for i, data in enumerate(days):
                path = layout.day_path(Stream.LOGS, first + timedelta(days=i))
                if kind == "gz":
                    path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, 6, mtime=0))
                else:
                    path.write_bytes(data)
            if kind == "zst":
                now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=args.days + 2)
                report = compress_due(layout, settings, now=now, level=args.level)
                assert len(report.done) == args.days and not report.failed
                print(f"\nproduct `compress_due` at level {args.level}: {len(report.done)} files, "
                      f"{report.bytes_before / 1e6:.1f} -> {report.bytes_after / 1e6:.2f} MB, "
                      f"{report.seconds:.2f}s = {_mb_s(report.bytes_before, report.seconds):.1f} MB/s "
                      f"(frames, fsyncs and the decompress-and-compare check included)")
            layouts[kind] = layout

        print("\n| month read through shared.reader | events | seconds | events/s | plain MB/s | vs plain |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        base = None
        for kind, layout in layouts.items():
            best = None
            for _ in range(2):
                got, seconds, counts = read_month(layout)
                assert got == events and counts.torn == counts.corrupt == 0
                best = seconds if best is None else min(best, seconds)
            assert best is not None
            base = base or best
            print(f"| {kind} | {events} | {best:.2f} | {events / best:,.0f} | {_mb_s(plain, best):.0f} | "
                  f"{base / best:.2f}x |")
        print(f"\ntotal {time.perf_counter() - started:.0f}s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
