from ninja.security import HttpBearer

from .models import AgentToken


class AgentTokenAuth(HttpBearer):
    """Bearer auth: the calling agent is the token's agent, never a body field."""

    openapi_scheme = "bearer"

    def authenticate(self, request, token):
        agent = AgentToken.authenticate(token)
        if agent is not None:
            request.agent = agent
        return agent
