# Authlib 1.9 ships no types. These stubs cover the part of it that oauth2_store.integrations.authlib,
# the Authlib example server and its tests use; modules without a stub here are Authlib's own
# (untyped), which this partial stub package leaves to Authlib.
__version__: str
__homepage__: str
__author__: str
__license__: str
