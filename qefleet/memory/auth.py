from ninja.security import HttpBearer

from . import ratelimit
from .models import AgentToken


class AgentTokenAuth(HttpBearer):
    """Bearer auth: the calling agent is the token's agent, never a body field.

    Every authenticated request counts against its agent's rate limit, before
    anything else is written for it, so a refused request changes nothing.
    """

    openapi_scheme = "bearer"

    def authenticate(self, request, token):
        found = AgentToken.find(token)
        if found is None:
            return None
        ratelimit.check(found.agent, request)
        found.touch()
        request.agent = found.agent
        return found.agent
