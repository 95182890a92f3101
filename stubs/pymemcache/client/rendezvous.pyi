# Stubs for pymemcache 4.0.0 (pymemcache/client/rendezvous.py) -- the default
# HashClient hasher.  Note: get_node() hashes f"{node}-{key}", so the str key
# "k" and the bytes key b"k" (formatted as "b'k'") usually map to DIFFERENT
# servers.

from collections.abc import Callable

class RendezvousHash:
    nodes: list[str]
    seed: int
    hash_function: Callable[[str], int]
    def __init__(
        self,
        nodes: list[str] | None = None,
        seed: int = 0,
        hash_function: Callable[[str, int], int] = ...,
    ) -> None: ...
    def add_node(self, node: str) -> None: ...
    def remove_node(self, node: str) -> None: ...
    def get_node(self, key: str | bytes) -> str | None: ...
