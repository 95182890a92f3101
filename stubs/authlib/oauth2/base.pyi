from authlib.common.errors import AuthlibHTTPError

def invalid_error_characters(text: str) -> list[str]: ...

class OAuth2Error(AuthlibHTTPError):
    state: str | None
    redirect_uri: str | None
    redirect_fragment: bool
    # Raises ValueError when the description holds a character RFC 6749 forbids (outside
    # %x20-21 / %x23-5B / %x5D-7E).
    def __init__(
        self,
        description: str | None = None,
        uri: str | None = None,
        status_code: int | None = None,
        state: str | None = None,
        redirect_uri: str | None = None,
        redirect_fragment: bool = False,
        error: str | None = None,
    ) -> None: ...
    # Redirects (302, "", [("Location", ...)]) when redirect_uri is set, else (status, body, headers).
    def __call__(self, uri: str | None = None) -> tuple[int, dict[str, str] | str, list[tuple[str, str]]]: ...
