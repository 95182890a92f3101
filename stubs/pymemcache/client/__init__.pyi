# Stubs for pymemcache 4.0.0 (pymemcache/client/__init__.py).

from pymemcache.client.base import Client as Client
from pymemcache.client.base import PooledClient as PooledClient
from pymemcache.client.hash import HashClient as HashClient
from pymemcache.client.retrying import RetryingClient as RetryingClient
from pymemcache.exceptions import MemcacheClientError as MemcacheClientError
from pymemcache.exceptions import MemcacheError as MemcacheError
from pymemcache.exceptions import MemcacheIllegalInputError as MemcacheIllegalInputError
from pymemcache.exceptions import MemcacheServerError as MemcacheServerError
from pymemcache.exceptions import MemcacheUnexpectedCloseError as MemcacheUnexpectedCloseError
from pymemcache.exceptions import MemcacheUnknownCommandError as MemcacheUnknownCommandError
from pymemcache.exceptions import MemcacheUnknownError as MemcacheUnknownError
