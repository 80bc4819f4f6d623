from django.core.files.storage import Storage
from django.http import FileResponse, Http404, HttpResponseForbidden
from django.views import View

from receipts.credit_notes import credit_note_filename, credit_note_for_link
from receipts.services import InvalidReceiptLink, receipt_filename, receipt_for_link, receipt_storage


def _pdf_download(storage: Storage, key: str, filename: str) -> FileResponse:
    if not storage.exists(key):
        raise Http404("Document file missing.")
    response = FileResponse(
        storage.open(key, "rb"), content_type="application/pdf", as_attachment=True, filename=filename
    )
    response["Cache-Control"] = "private, no-store"
    return response


class ReceiptDownloadApi(View):
    """Serve a locally stored receipt to whoever holds a valid, unexpired signed link."""

    def get(self, request, token: str):
        try:
            receipt = receipt_for_link(token)
        except InvalidReceiptLink as error:
            return HttpResponseForbidden(str(error))
        return _pdf_download(receipt_storage(), receipt.storage_key, receipt_filename(receipt))


class CreditNoteDownloadApi(View):
    """Serve a locally stored credit note to whoever holds a valid, unexpired signed link."""

    def get(self, request, token: str):
        try:
            note = credit_note_for_link(token)
        except InvalidReceiptLink as error:
            return HttpResponseForbidden(str(error))
        return _pdf_download(receipt_storage(), note.storage_key, credit_note_filename(note))
