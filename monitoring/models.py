from django.db import models


class AlarmFiring(models.Model):
    """One stretch of time during which one alarm rule fired: from when it was first seen
    firing until it was first seen fine again. Written by monitoring/alarms.py alone."""

    rule = models.CharField(max_length=40)
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(help_text="When an evaluation last found the rule firing.")
    notified_at = models.DateTimeField(null=True, blank=True, help_text="When the firing email first went.")
    notified_to = models.JSONField(
        default=list, blank=True, help_text="Every address the firing email went to, each once (empty: nobody told)."
    )
    resolve_notified_at = models.DateTimeField(null=True, blank=True, help_text="When the resolved email went.")
    summary = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        # Given to the roles that act on orders (staff/roles.py); superusers have it anyway.
        permissions = [("receive_alarms", "Is emailed when an alarm fires")]
        indexes = [models.Index(fields=["rule", "resolved_at"], name="alarm_rule_open")]
        constraints = [
            # At most one open firing per rule, whatever two evaluations do at once.
            models.UniqueConstraint(
                fields=["rule"], condition=models.Q(resolved_at__isnull=True), name="alarm_one_open_firing_per_rule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} since {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_firing(self) -> bool:
        return self.resolved_at is None

    @property
    def told(self) -> str:
        """Who the firing email reached, for a person: "nobody" until it reached someone."""
        return ", ".join(self.notified_to) if self.notified_to else "nobody"
