import re
from collections.abc import Callable
from typing import ClassVar

from ..rfc6749.grants import BaseGrant
from ..rfc6749.models import AuthorizationCodeMixin

CODE_VERIFIER_PATTERN: re.Pattern[str]
CODE_CHALLENGE_PATTERN: re.Pattern[str]

def create_s256_code_challenge(code_verifier: str) -> str: ...
def compare_plain_code_challenge(code_verifier: str, code_challenge: str) -> bool: ...
def compare_s256_code_challenge(code_verifier: str, code_challenge: str) -> bool: ...

# The PKCE extension of the authorization-code grant: server.register_grant(Grant, [CodeChallenge()]).
# It reads code_challenge and code_challenge_method attributes of the grant's authorization code.
class CodeChallenge:
    DEFAULT_CODE_CHALLENGE_METHOD: ClassVar[str]
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]]
    CODE_CHALLENGE_METHODS: ClassVar[dict[str, Callable[[str, str], bool]]]
    # required: a public client (token endpoint auth method "none") must send a code_verifier.
    required: bool
    def __init__(self, required: bool = True) -> None: ...
    def __call__(self, grant: BaseGrant) -> None: ...
    # Raises InvalidRequestError. Despite its name, redirect_uri is what the hooked payload check
    # returned (None): Authlib calls it as an after-hook.
    def validate_code_challenge(self, grant: BaseGrant, redirect_uri: object) -> None: ...
    # Raises InvalidRequestError, InvalidGrantError (a verifier that does not match).
    def validate_code_verifier(self, grant: BaseGrant, result: object) -> None: ...
    def get_authorization_code_challenge(self, authorization_code: AuthorizationCodeMixin) -> str | None: ...
    def get_authorization_code_challenge_method(self, authorization_code: AuthorizationCodeMixin) -> str | None: ...
