"""The Content-Security-Policy header built once per process (framework.content_security_policy)
is django-csp's own, byte for byte; a response that changes the policy or uses a nonce still
gets its own, and a change of the settings is served at once."""

from csp.constants import HEADER
from csp.decorators import csp_update
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from framework.content_security_policy import CSPMiddleware


def served(response_of, path="/api/orders/") -> tuple[str | None, str | None]:
    """The header ours and django-csp's own middleware put on the same response."""
    factory = RequestFactory()
    headers = []
    for middleware_class in (CSPMiddleware, DjangoCSPMiddleware):
        middleware = middleware_class(lambda request: response_of(request))
        headers.append(middleware(factory.post(path)).get(HEADER))
    return headers[0], headers[1]


def test_the_settings_policy_is_django_csps_byte_for_byte():
    ours, theirs = served(lambda request: HttpResponse())
    assert ours and ours == theirs
    assert "default-src 'self'" in ours and "frame-ancestors 'none'" in ours


def test_a_response_that_changes_the_policy_or_uses_a_nonce_gets_its_own():
    @csp_update({"script-src": ["https://js.stripe.com"]})
    def with_stripe(request):
        return HttpResponse()

    ours, theirs = served(with_stripe)
    assert "https://js.stripe.com" in ours and ours == theirs

    def with_nonce(request):
        return HttpResponse(str(request.csp_nonce))

    ours, _ = served(with_nonce)
    assert ours == served(lambda request: HttpResponse())[0]  # no NONCE in this policy: nothing added


def test_a_change_of_the_settings_is_served_at_once():
    before, _ = served(lambda request: HttpResponse())
    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'none'"]}}):
        ours, theirs = served(lambda request: HttpResponse())
        assert ours == theirs == "default-src 'none'"
    assert served(lambda request: HttpResponse())[0] == before


def test_excluded_prefixes_and_exempt_responses_get_no_header():
    policy = {"DIRECTIVES": {"default-src": ["'self'"]}, "EXCLUDE_URL_PREFIXES": ["/api/"]}
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        assert served(lambda request: HttpResponse()) == (None, None)

    def exempt(request):
        response = HttpResponse()
        response._csp_exempt = True
        return response

    assert served(exempt) == (None, None)
