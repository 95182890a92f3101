from ..rfc6749.resource_protector import TokenValidator

# validate_token refuses (InvalidTokenError: 401) a token that authenticate_token did not find,
# or that is expired or revoked, and one without the scopes asked for (InsufficientScopeError: 403).
class BearerTokenValidator(TokenValidator): ...
