from .errors import InvalidTokenError as InvalidTokenError
from .errors import MismatchingStateError as MismatchingStateError
from .errors import MissingRequestTokenError as MissingRequestTokenError
from .errors import MissingTokenError as MissingTokenError
from .errors import OAuthError as OAuthError
from .errors import TokenExpiredError as TokenExpiredError
from .errors import UnsupportedTokenTypeError as UnsupportedTokenTypeError
