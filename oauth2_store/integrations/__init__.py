"""The wiring of oauth2-store's stores into the OAuth 2.0 servers people run.

One module per server library, each the only place where that library's records and errors meet
ours: :mod:`oauth2_store.integrations.python_oauth2` for python-oauth2's ``Provider``,
:mod:`oauth2_store.integrations.authlib` for Authlib's ``AuthorizationServer`` and
``ResourceProtector``, :mod:`oauth2_store.integrations.oauthlib` for oauthlib's
``RequestValidator``. Each needs its extra installed (``pip install 'oauth2-store[authlib]'``,
``[oauthlib]``, ``[python-oauth2]``); nothing in
:mod:`oauth2_store.store` knows these libraries exist.
"""
