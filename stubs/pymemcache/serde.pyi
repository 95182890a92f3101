# Stubs for pymemcache 4.0.0 (pymemcache/serde.py).
#
# The serde protocol as the 4.0.0 client really calls it:
#   serde.serialize(key, value)          -- ``key`` is the *prefixed*, already
#                                            checked key as bytes
#   serde.deserialize(key, value, flags) -- ``key`` is the key exactly as the
#                                            caller passed it (str or bytes),
#                                            ``value`` the raw bytes, ``flags``
#                                            the int stored with the item.
# ``serialize`` returns (data, flags); data that is not bytes is encoded with
# ``str(data).encode(client.encoding)``.  ``deserialize`` may return anything,
# which is why the clients' get/get_many/gets values are typed ``Any``.

from collections.abc import Callable
from typing import Any, Final, Protocol

_Key = str | bytes

class _SerdeProtocol(Protocol):
    def serialize(self, key: bytes, value: Any, /) -> tuple[Any, int]: ...
    def deserialize(self, key: _Key, value: bytes, flags: int, /) -> Any: ...

_Serializer = Callable[[bytes, Any], tuple[Any, int]]
_Deserializer = Callable[[_Key, bytes, int], Any]

FLAG_BYTES: Final = 0
FLAG_PICKLE: Final = 1
FLAG_INTEGER: Final = 2
FLAG_LONG: Final = 4
FLAG_COMPRESSED: Final = 8
FLAG_TEXT: Final = 16
DEFAULT_PICKLE_VERSION: Final[int]

def get_python_memcache_serializer(
    pickle_version: int = ...,
) -> Callable[[object, object], tuple[bytes | str, int]]: ...

python_memcache_serializer: Callable[[object, object], tuple[bytes | str, int]]

def python_memcache_deserializer(key: object, value: bytes, flags: int) -> Any: ...

class PickleSerde:
    def __init__(self, pickle_version: int = ...) -> None: ...
    def serialize(self, key: object, value: object) -> tuple[bytes | str, int]: ...
    def deserialize(self, key: object, value: bytes, flags: int) -> Any: ...

pickle_serde: PickleSerde

class CompressedSerde:
    def __init__(
        self,
        compress: Callable[[bytes], bytes] = ...,
        decompress: Callable[[bytes], bytes] = ...,
        serde: _SerdeProtocol = ...,
        min_compress_len: int = 400,
    ) -> None: ...
    def serialize(self, key: bytes, value: Any) -> tuple[Any, int]: ...
    def deserialize(self, key: _Key, value: bytes, flags: int) -> Any: ...

compressed_serde: CompressedSerde

class LegacyWrappingSerde:
    serialize: _Serializer
    deserialize: _Deserializer
    def __init__(
        self,
        serializer_func: _Serializer | None,
        deserializer_func: _Deserializer | None,
    ) -> None: ...
    # The pass-through defaults (bytes in, bytes out); oauth2-store checks a client uses them.
    def _default_serialize(self, key: _Key, value: object) -> tuple[object, int]: ...
    def _default_deserialize(self, key: _Key, value: bytes, flags: int) -> bytes: ...
