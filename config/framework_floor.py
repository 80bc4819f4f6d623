"""The framework's floor: a POST that does nothing of ours, for the benchmark.

`POST /bench/floor` goes through the same gunicorn, middleware and settings as placing an
order, and DRF parses its JSON body, but no throttle, validation, query or task runs: its CPU
per request is what Django and DRF cost before our code starts, so the bench can split the
accepting request's cost into theirs and ours. Mounted only with FRAMEWORK_FLOOR_ENDPOINT on,
which the bench's stack sets; `check --deploy` warns when it is on.
"""

from django.conf import settings
from django.core.checks import Tags, Warning, register
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView


class FrameworkFloorApi(APIView):
    """POST /bench/floor: the body parsed, 202 with an empty object, nothing else."""

    throttle_classes: list = []

    @extend_schema(exclude=True)
    def post(self, request):
        request.data  # noqa: B018  (parsing the body is the framework's work, and part of the floor)
        return Response({}, status=status.HTTP_202_ACCEPTED)


@register(Tags.security, deploy=True)
def check_floor_endpoint_is_off(app_configs=None, **kwargs) -> list[Warning]:
    """The floor endpoint is the bench's: open to anyone and answering every POST."""
    if not settings.FRAMEWORK_FLOOR_ENDPOINT:
        return []
    return [
        Warning(
            "FRAMEWORK_FLOOR_ENDPOINT is on: POST /bench/floor answers anyone (the benchmark's no-op endpoint).",
            hint="Leave FRAMEWORK_FLOOR_ENDPOINT unset outside the benchmark.",
            id="config.W001",
        )
    ]
