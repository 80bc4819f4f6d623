from django.apps import AppConfig


class PartnersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "partners"
    verbose_name = "Partners"

    def ready(self) -> None:
        # The API key's scheme in the OpenAPI schema (drf-spectacular finds extensions on import).
        from partners import schema  # noqa: F401
