"""Guide-format log lines, as the guide's ``HybridLoggingService`` wrote them, and running ``chatlog import``.

``json.dumps(item)`` per line (Korean as ``\\u`` escapes), naive ``datetime.now()``
timestamps (half ``isoformat()``, half ``str()`` with a space), raw user ids, no
``log_id``: what a team that followed the guide has in ``logs/data/``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import TEST_SECRET

GUIDE_DIR = Path(__file__).resolve().parent.parent / "data" / "guide_logs"
# The fixtures are dated June 2026: a retention long enough that they stay importable.
IMPORT_ENV = {"CHATLOG_TIMEZONE": "Asia/Seoul", "CHATLOG_LOG_RETENTION_DAYS": "3650"}
# Raw user ids in the fixtures: none may ever be found in a data directory.
FIXTURE_USER_IDS = ("kim.minji", "lee.junho", "park.sora", "choi.yuna", "john.smith")

_QUESTIONS = ["연차 휴가는 어떻게 신청하나요?", "재택근무 신청 절차가 궁금합니다", "VPN 접속이 자꾸 끊겨요",
              "How do I reset my password?", "Where do I submit travel receipts?", "법인카드 한도는 얼마인가요?"]
_ANSWERS = ["인사 시스템의 '휴가 신청' 메뉴에서 신청하세요. 팀장 승인 후 확정됩니다.",
            "Use the self-service portal: Settings > Security > Reset password, then sign in again."]


def guide_lines(day: date, count: int, seed: int = 1) -> Iterator[str]:
    """``count`` guide-format lines of one local day: user questions and their answers, alternating."""
    rng = random.Random(seed * 100_003 + day.toordinal())
    start = datetime(day.year, day.month, day.day, 0, 0, 1)
    step = timedelta(seconds=86_000 / max(1, count))
    session = ""
    for i in range(count):
        at = start + step * i
        if i % 2 == 0:
            session = f"{rng.getrandbits(64):016x}"
        item: dict[str, Any] = {
            "session_id": session, "collection_name": rng.choice(["hr-docs", "it-support", "finance"]),
            "message_type": "user" if i % 2 == 0 else "assistant",
            "message_content": rng.choice(_QUESTIONS if i % 2 == 0 else _ANSWERS),
            "user_id": f"user-{rng.randrange(500)}", "reasoning_level": "medium",
            "created_at": at.isoformat() if i % 4 < 2 else str(at),
        }
        if i % 2:
            item.update(llm_model="gpt-4o-mini", llm_params={"temperature": 0.7, "max_tokens": 2000, "top_p": 0.9},
                        retrieval_info={"query": item["message_content"], "retrieved_count": 5, "reranking_used": True,
                                        "top_scores": [round(rng.uniform(0.3, 0.95), 2) for _ in range(3)]},
                        performance={"response_time_ms": rng.randrange(300, 4000),
                                     "token_count": rng.randrange(100, 900),
                                     "retrieval_time_ms": rng.randrange(20, 400)})
        yield json.dumps(item)


def import_env(data_dir: Path, socket_path: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a ``chatlog import`` (or ingestor) on ``data_dir``."""
    env = {**os.environ, "CHATLOG_DATA_DIR": str(data_dir), "CHATLOG_USER_HASH_SECRET": TEST_SECRET,
           "CHATLOG_LOG_LEVEL": "WARNING", **IMPORT_ENV, **extra}
    if socket_path is not None:
        env["CHATLOG_INGEST_SOCKET"] = str(socket_path)
    return env


def run_import(env: dict[str, str], *args: str, stdin: bytes | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m chatlog import ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "chatlog", "import", *args], env=env, input=stdin.decode() if stdin else None,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def day_file_lines(data_dir: Path, day: str) -> list[dict[str, Any]]:
    """Every stored record of one day, plain or compressed (read with the product's reader)."""
    from shared.reader import iter_lines

    base = data_dir / "data"
    for name in (f"{day}.jsonl.zst", f"{day}.jsonl"):
        if (base / name).exists():
            return [json.loads(line) for line in iter_lines(base / name)]
    return []


def every_byte(data_dir: Path) -> bytes:
    """Every byte of every file under ``data_dir``, compressed day files decompressed (no ingestor running)."""
    from shared.reader import iter_lines

    out = []
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            path = Path(root) / name
            if name.endswith((".zst", ".gz")):
                out.append(b"\n".join(iter_lines(path)))
            if path.is_file() and not path.is_socket():
                out.append(path.read_bytes())
    return b"".join(out)
