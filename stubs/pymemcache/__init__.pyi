# Stubs for pymemcache 4.0.0 (pymemcache/__init__.py).
#
# Note: the top-level package does NOT re-export RetryingClient at runtime
# (``from pymemcache import RetryingClient`` raises ImportError in 4.0.0);
# import it from ``pymemcache.client`` or ``pymemcache.client.retrying``.

from typing import Final

from pymemcache.client.base import Client as Client
from pymemcache.client.base import KeepaliveOpts as KeepaliveOpts
from pymemcache.client.base import PooledClient as PooledClient
from pymemcache.client.hash import HashClient as HashClient
from pymemcache.exceptions import MemcacheClientError as MemcacheClientError
from pymemcache.exceptions import MemcacheError as MemcacheError
from pymemcache.exceptions import MemcacheIllegalInputError as MemcacheIllegalInputError
from pymemcache.exceptions import MemcacheServerError as MemcacheServerError
from pymemcache.exceptions import MemcacheUnexpectedCloseError as MemcacheUnexpectedCloseError
from pymemcache.exceptions import MemcacheUnknownCommandError as MemcacheUnknownCommandError
from pymemcache.exceptions import MemcacheUnknownError as MemcacheUnknownError

__version__: Final[str]
