import secrets

from django.db import models


def new_link_id() -> str:
    """What a receipt's download links carry: 128 random bits, telling nothing of the order."""
    return secrets.token_urlsafe(16)


class StoredDocument(models.Model):
    """A PDF kept in the receipts' storage: its key (never a URL: every download link is signed
    afresh), the random id its links carry, and what was read back once it was stored whole."""

    storage_key = models.CharField(max_length=255, blank=True)
    link_id = models.CharField(max_length=32, unique=True, default=new_link_id, editable=False)
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the stored PDF, as read back after writing.")
    created_at = models.DateTimeField(auto_now_add=True)
    stored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Receipt(StoredDocument):
    """The PDF receipt of one completed sale. Its number is its primary key, taken from the
    database's sequence when the row is created, so numbers are unique without "last + 1"."""

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="receipt")

    def __str__(self) -> str:
        return f"Receipt {self.number}"

    @property
    def number(self) -> str:
        return f"R-{self.pk:08d}"


class DocumentSequence(models.Model):
    """The last number given in one gap-free sequence (credit notes).

    A database sequence (as receipts use) skips the numbers of rolled-back transactions; a
    credit note's number is taken under this row's lock in the transaction that creates the
    note, so a rollback gives its number back and the notes run 1, 2, 3 without a gap.
    """

    name = models.CharField(max_length=40, primary_key=True)
    last = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.last}"


class CreditNote(StoredDocument):
    """The numbered PDF document of one refund, correcting the order's receipt; stored and
    linked like a receipt."""

    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="credit_notes")
    refund = models.OneToOneField("payments.Refund", on_delete=models.PROTECT, related_name="credit_note")
    receipt = models.ForeignKey(
        Receipt, on_delete=models.PROTECT, null=True, blank=True, related_name="credit_notes", help_text="It corrects."
    )

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"Credit note {self.number}"

    @property
    def number(self) -> str:
        return f"CN-{self.sequence:08d}"
