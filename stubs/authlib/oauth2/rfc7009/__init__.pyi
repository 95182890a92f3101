from .revocation import RevocationEndpoint as RevocationEndpoint
