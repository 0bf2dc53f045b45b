"""The bounded window of recently stored log_ids that makes retries idempotent."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class RecentIdWindow:
    """Remembers the last ``capacity`` stored log_ids (as 64-bit hashes, to bound memory).

    A hash collision could drop a distinct event; at 64 bits and 200,000 ids its
    probability is about 1e-9, which is the price of ~70 bytes per id instead of ~200.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._order: deque[int] = deque()
        self._seen: set[int] = set()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, log_id: object) -> bool:
        return hash(log_id) in self._seen

    def add_all(self, log_ids: Iterable[str]) -> None:
        """Remember many ids (a committed batch's) in one call, as ``add`` would one by one."""
        if self._capacity <= 0:
            return
        seen = self._seen
        order = self._order
        for log_id in log_ids:
            key = hash(log_id)
            if key not in seen:
                seen.add(key)
                order.append(key)
        while len(order) > self._capacity:
            seen.discard(order.popleft())

    def add(self, log_id: str) -> None:
        """Remember one id, forgetting the oldest beyond capacity."""
        if self._capacity <= 0:
            return
        key = hash(log_id)
        if key in self._seen:
            return
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._capacity:
            self._seen.discard(self._order.popleft())
