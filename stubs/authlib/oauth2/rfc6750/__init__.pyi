from .errors import InsufficientScopeError as InsufficientScopeError
from .errors import InvalidTokenError as InvalidTokenError
from .token import BearerTokenGenerator as BearerTokenGenerator
from .validator import BearerTokenValidator as BearerTokenValidator

BearerToken = BearerTokenGenerator
