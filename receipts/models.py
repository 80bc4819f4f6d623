from django.db import models


class Receipt(models.Model):
    """The PDF receipt of one completed sale. Its number is its primary key, taken from the
    database's sequence when the row is created, so numbers are unique without "last + 1".
    The storage key is kept, never a URL: every download link is signed afresh."""

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="receipt")
    storage_key = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the stored PDF, as read back after writing.")
    created_at = models.DateTimeField(auto_now_add=True)
    stored_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Receipt {self.number}"

    @property
    def number(self) -> str:
        return f"R-{self.pk:08d}"
