from ..base_client import OAuthError as OAuthError
from .oauth2_session import OAuth2Session as OAuth2Session
