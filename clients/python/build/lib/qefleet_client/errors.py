class QEFleetError(Exception):
    """Anything the client raises on purpose."""


class ApiError(QEFleetError):
    """The server refused the request (4xx): sending it again will not help."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field


class Unavailable(QEFleetError):
    """The server could not be reached or kept answering 'later' (429, 5xx)
    for the whole of the call's time budget."""
