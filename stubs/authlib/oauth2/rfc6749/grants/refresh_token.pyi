from typing import ClassVar

from ..models import TokenMixin
from .base import BaseGrant, TokenEndpointMixin

class RefreshTokenGrant(BaseGrant, TokenEndpointMixin):
    GRANT_TYPE: ClassVar[str | None]
    INCLUDE_NEW_REFRESH_TOKEN: ClassVar[bool]
    def issue_token(self, user: object, refresh_token: TokenMixin) -> dict[str, object]: ...
    # What a subclass implements (the base raises NotImplementedError).
    # None (or anything false, or a token of another client) is answered invalid_grant.
    def authenticate_refresh_token(self, refresh_token: str) -> TokenMixin | None: ...
    # None (or anything false) is answered invalid_request.
    def authenticate_user(self, refresh_token: TokenMixin) -> object: ...
    def revoke_old_credential(self, refresh_token: TokenMixin) -> None: ...
