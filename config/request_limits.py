"""Limits on what a request may carry into the API: its size and the depth of its JSON.

A body larger than API_MAX_BODY_BYTES is answered 413 before it is read (by its
Content-Length, in `limit_api_body_size`) or while it is read (a chunked body, in the
parser); JSON nested deeper than API_MAX_JSON_DEPTH is a 400. Both are the client's
mistakes, logged as one warning line, never as an error with a traceback: a flood of them
must not page anyone or fill the logs. nginx, in front in production, refuses bodies over
its own `client_max_body_size` first.
"""

import codecs

from django.conf import settings
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

API_PREFIX = "/api/"


class RequestBodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self):
        super().__init__(f"The request body is larger than {settings.API_MAX_BODY_BYTES} bytes.")


def limit_api_body_size(get_response):
    """Middleware: answer 413 to an API request whose declared body exceeds the limit."""

    def middleware(request):
        if request.path.startswith(API_PREFIX):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.API_MAX_BODY_BYTES:
                return JsonResponse({"detail": str(RequestBodyTooLarge().detail)}, status=413)
        return get_response(request)

    return middleware


def json_depth(value) -> int:
    """How deeply `value` nests lists and objects (a scalar is 0), without recursion."""
    deepest = 0
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


class LimitedJSONParser(JSONParser):
    """DRF's JSON parser, reading at most API_MAX_BODY_BYTES and refusing deep nesting with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestBodyTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
            data = json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except RecursionError as exc:
            # Python's decoder recurses once per level: far too deep is refused the same way.
            raise exceptions.ParseError(f"JSON nested deeper than {settings.API_MAX_JSON_DEPTH} levels.") from exc
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
        if json_depth(data) > settings.API_MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"JSON nested deeper than {settings.API_MAX_JSON_DEPTH} levels.")
        return data
