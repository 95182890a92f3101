from .base import OAuth2Error as OAuth2Error
from .client import OAuth2Client as OAuth2Client
from .rfc6749 import AuthorizationServer as AuthorizationServer
from .rfc6749 import JsonRequest as JsonRequest
from .rfc6749 import OAuth2Request as OAuth2Request
from .rfc6749 import ResourceProtector as ResourceProtector
