"""How the API answers errors: always a 4xx body of field errors a client can show."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, with a body in the wrong format answered as a 400 naming the field."""
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Response(
            {"content_type": [f"Send the order as application/json, not {context['request'].content_type}."]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.ParseError):
        return Response({"body": [f"Malformed JSON: {exc.detail}"]}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
