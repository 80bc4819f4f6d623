"""The request id: taken from the caller's X-Request-ID (a proxy's, a client's) or made
here, bound to the log context for the request's lines and the tasks it queues, and
returned in the response's X-Request-ID."""

import re

from framework import log_context

HEADER = "X-Request-ID"
# A caller's id is kept only when it is short and plain, so it cannot forge log content.
ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(HEADER, "")
        request_id = given if ACCEPTED.fullmatch(given) else log_context.new_request_id()
        # A worker thread serves many requests: nothing of the previous one may stay bound.
        log_context.restore({"request_id": request_id})
        request.request_id = request_id
        response = self.get_response(request)
        response[HEADER] = request_id
        return response
