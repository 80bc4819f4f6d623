"""The shopper's page: the React build's index.html, whose assets whitenoise serves."""

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from payments.services import stripe_js_publishable_key

INDEX = settings.BASE_DIR / "frontend" / "dist" / "index.html"
FAVICON = settings.BASE_DIR / "static" / "favicon.svg"


@require_GET
@never_cache
def shop_page(request, reference: str = ""):
    """Serve the built page (the shop at /, one order at /orders/<reference>: the app reads the
    path); its hashed assets are cached for a year, the page itself never. Where the page
    collects cards with Stripe.js, its policy lets Stripe.js in (and no other page's does)."""
    if not INDEX.exists():
        return HttpResponseNotFound("The shop page is not built: run `make run` (or `npm run build` in frontend/).")
    response = HttpResponse(INDEX.read_bytes(), content_type="text/html; charset=utf-8")
    if stripe_js_publishable_key():
        # django-csp's per-response addition to CONTENT_SECURITY_POLICY (what @csp_update sets).
        response._csp_update = settings.STRIPE_JS_CONTENT_SECURITY_POLICY  # type: ignore[attr-defined]  # django-csp's own attribute
    return response


@require_GET
def favicon(request):
    """The shop's icon at the address every browser asks for (/favicon.ico), linked from the
    shop page and the admin: without it each page view logged a 404."""
    response = HttpResponse(FAVICON.read_bytes(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response
