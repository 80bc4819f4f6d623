from django.http import FileResponse, Http404, HttpResponseForbidden
from django.views import View

from receipts.services import InvalidReceiptLink, receipt_filename, receipt_for_link, receipt_storage


class ReceiptDownloadApi(View):
    """Serve a locally stored receipt to whoever holds a valid, unexpired signed link."""

    def get(self, request, token: str):
        try:
            receipt = receipt_for_link(token)
        except InvalidReceiptLink as error:
            return HttpResponseForbidden(str(error))
        storage = receipt_storage()
        if not storage.exists(receipt.storage_key):
            raise Http404("Receipt file missing.")
        response = FileResponse(
            storage.open(receipt.storage_key, "rb"),
            content_type="application/pdf",
            as_attachment=True,
            filename=receipt_filename(receipt),
        )
        response["Cache-Control"] = "private, no-store"
        return response
