"""Answers for when a part the app stands on is briefly away."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)

# A database restart takes seconds; a client that waits this long before trying again
# usually finds it back.
RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware:
    """A database that cannot be reached is a 503 with a JSON body and `Retry-After`, not an
    HTML 500: clients (and the shop page) can tell "try again" from "this is broken"."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        response = JsonResponse(
            {"detail": "The shop is unavailable for a moment; please try again in a few seconds."}, status=503
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
