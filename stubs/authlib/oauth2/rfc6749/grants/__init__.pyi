from .authorization_code import AuthorizationCodeGrant as AuthorizationCodeGrant
from .base import AuthorizationEndpointMixin as AuthorizationEndpointMixin
from .base import BaseGrant as BaseGrant
from .base import TokenEndpointMixin as TokenEndpointMixin
from .client_credentials import ClientCredentialsGrant as ClientCredentialsGrant
from .refresh_token import RefreshTokenGrant as RefreshTokenGrant
