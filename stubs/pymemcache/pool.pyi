# Stubs for pymemcache 4.0.0 (pymemcache/pool.py) -- only what PooledClient
# exposes (PooledClient.client_pool).

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")

class ObjectPool(Generic[_T]):
    max_size: int
    idle_timeout: float
    def __init__(
        self,
        obj_creator: Callable[[], _T],
        after_remove: Callable[[_T], object] | None = None,
        max_size: int | None = None,
        idle_timeout: float = 0,
        lock_generator: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None: ...
    @property
    def used(self) -> tuple[_T, ...]: ...
    @property
    def free(self) -> tuple[_T, ...]: ...
    def get_and_release(self, destroy_on_fail: bool = False) -> AbstractContextManager[_T]: ...
    def get(self) -> _T: ...
    def destroy(self, obj: _T, silent: bool = True) -> None: ...
    def release(self, obj: _T, silent: bool = True) -> None: ...
    def clear(self) -> None: ...
