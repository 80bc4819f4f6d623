import secrets

from django.db import models


def new_link_id() -> str:
    """What a receipt's download links carry: 128 random bits, telling nothing of the order."""
    return secrets.token_urlsafe(16)


class Receipt(models.Model):
    """The PDF receipt of one completed sale. Its number is its primary key, taken from the
    database's sequence when the row is created, so numbers are unique without "last + 1".
    The storage key is kept, never a URL: every download link is signed afresh."""

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="receipt")
    storage_key = models.CharField(max_length=255, blank=True)
    link_id = models.CharField(max_length=32, unique=True, default=new_link_id, editable=False)
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the stored PDF, as read back after writing.")
    created_at = models.DateTimeField(auto_now_add=True)
    stored_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Receipt {self.number}"

    @property
    def number(self) -> str:
        return f"R-{self.pk:08d}"
