from typing import ClassVar

from .base import BaseGrant, TokenEndpointMixin

class ClientCredentialsGrant(BaseGrant, TokenEndpointMixin):
    GRANT_TYPE: ClassVar[str | None]
