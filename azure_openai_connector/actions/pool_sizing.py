"""Keep a client's connection pool as large as the concurrency its batch steps use together.

A pool smaller than the requests in flight discards a connection each time one more comes back
than it holds (64 kept of 100 means 36 new connections per wave, each a TCP and TLS handshake).
A batch step declares its concurrency for as long as it runs; when the steps on one client
together need more than its pool holds, the pool grows (never shrinks, up to MAX_POOL_SIZE).
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

from .. import process_state
from ..http import HttpClient

MAX_POOL_SIZE = 512

_lock = threading.Lock()
_in_use: "weakref.WeakKeyDictionary[HttpClient, int]" = weakref.WeakKeyDictionary()


@process_state.on_fork_in_child
def _renew_lock() -> None:
    global _lock
    _lock = threading.Lock()


@contextmanager
def connections_in_use(client: HttpClient, count: int) -> Iterator[None]:
    """Declare `count` more concurrent requests on `client` while the block runs, growing its
    connection pool first when they would not fit."""
    with _lock:
        total = _in_use.get(client, 0) + count
        _in_use[client] = total
        if total > client.pool_size and client.pool_size < MAX_POOL_SIZE:
            grow_pool(client, min(total, MAX_POOL_SIZE))
    try:
        yield
    finally:
        with _lock:
            _in_use[client] = max(0, _in_use.get(client, 0) - count)


def grow_pool(client: HttpClient, size: int) -> None:
    """Give `client` pools of `size` connections. Its adapters get new pool managers in place (no
    remounting, which would change the adapter table under requests in flight); the old pools'
    idle connections are closed now, busy ones when they come back."""
    client.pool_size = size
    adapters = {id(adapter): adapter for adapter in client.session.adapters.values()}
    for adapter in adapters.values():
        old_manager = getattr(adapter, "poolmanager", None)
        if old_manager is None:
            continue
        adapter.init_poolmanager(adapter._pool_connections, size, block=adapter._pool_block)
        for key in list(old_manager.pools.keys()):
            pool = old_manager.pools.get(key)
            if pool is not None:
                pool.close()
