"""The partner API's security scheme in the OpenAPI schema (a drf-spectacular extension)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "partners.authentication.PartnerKeyAuthentication"
    name = "PartnerKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pk_<prefix>.<secret>",
            "description": "A partner API key, issued in the back office (docs/partner-api.md).",
        }
