"""Stock as clerks work it in the admin: products with their stock, restock and adjust forms,
the ledger, CSV import with a preview, CSV exports. Every write goes through
`inventory.services` or `inventory.stock_import`; these views only check, call and show.
"""

import uuid
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from framework.csv_response import csv_download
from framework.permissions import NamedActionRefusals, require_permission
from framework.readonly_admin import ReadOnlyAdmin
from inventory.exports import ledger_rows, product_rows
from inventory.models import Product, StockMovement
from inventory.selectors import products_with_stock
from inventory.services import StockAdjustmentError, adjust_stock
from inventory.stock_import import (
    StockImportError,
    apply_stock_import,
    decode_stock_csv,
    parse_stock_csv,
    preview_stock_import,
)

ADJUST, IMPORT, EXPORT = "inventory.adjust_stock", "inventory.import_stock", "inventory.export_stock"


class StockChangeForm(forms.Form):
    """A delta with a reason. Restocking adds units; an adjustment adds or removes them."""

    quantity = forms.IntegerField()
    reason = forms.CharField(max_length=200, help_text="Why: delivery note, stock count, damage...")
    # One key per form shown: submitting the same form twice writes one ledger line.
    submission_key = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, restock: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.restock = restock
        if restock:
            self.fields["quantity"] = forms.IntegerField(
                min_value=1, label="Units received", help_text="Added to on hand."
            )
        else:
            self.fields["quantity"] = forms.IntegerField(
                label="Change of units", help_text="Positive adds to on hand, negative removes (count, damage, loss)."
            )
        self.order_fields(["quantity", "reason"])

    def clean_quantity(self):
        quantity = self.cleaned_data["quantity"]
        if quantity == 0:
            raise forms.ValidationError("Give a number of units other than zero.")
        return quantity


class StockImportForm(forms.Form):
    file = forms.FileField(required=False, help_text="CSV: sku,name,price,currency,on_hand (as an export writes it).")
    # The previewed file travels back with the confirmation, so what is applied is what was shown.
    csv_text = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    file_name = forms.CharField(required=False, widget=forms.HiddenInput)


class LedgerPeriodForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("start") and cleaned.get("end") and cleaned["start"] > cleaned["end"]:
            self.add_error("end", "The period ends before it starts.")
        return cleaned


class LowStockFilter(admin.SimpleListFilter):
    title = "stock level"
    parameter_name = "low_stock"

    def lookups(self, request, model_admin):
        return [("yes", "Low on stock"), ("no", "Not low")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(is_low_on_stock=self.value() == "yes")
        return queryset


def ledger_url(product: Product) -> str:
    return f"{reverse('admin:inventory_stockmovement_changelist')}?product__id__exact={product.pk}"


def stock_links(product: Product, *, can_adjust: bool) -> list[tuple[str, str]]:
    """(label, url) of what a clerk does with a product's stock: restock, adjust, read its ledger."""
    links = [("Ledger", ledger_url(product))]
    if can_adjust:
        links[:0] = [
            ("Restock", reverse("admin:inventory_product_restock", args=[product.pk])),
            ("Adjust", reverse("admin:inventory_product_adjust", args=[product.pk])),
        ]
    return links


@admin.register(Product)
class ProductAdmin(NamedActionRefusals, admin.ModelAdmin):
    list_display = ["sku", "name_shown", "price_shown", "on_hand", "reserved", "available", "threshold"]
    list_filter = [LowStockFilter, "active", "currency"]
    search_fields = ["sku", "name"]
    fields = ["sku", "name", "price", "currency", "active", "low_stock_threshold"]
    stock_fields = ["on_hand", "reserved", "available"]

    def get_queryset(self, request):
        return products_with_stock()

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(None, {"fields": self.fields})]
        return fieldsets + [("Stock", {"fields": self.stock_fields})] if obj else fieldsets

    def get_readonly_fields(self, request, obj=None):
        return self.stock_fields if obj else []

    def has_delete_permission(self, request, obj=None):
        return False  # a product with ledger lines is history: take it off sale instead

    @admin.display(description="Name", ordering="name")
    def name_shown(self, product):
        if product.active:
            return product.name
        return format_html('{} <span class="off-sale">(off sale)</span>', product.name)

    @admin.display(description="Price", ordering="price")
    def price_shown(self, product):
        return f"{product.price} {product.currency}"

    @admin.display(description="Low at", ordering="low_stock_threshold")
    def threshold(self, product):
        return product.low_stock_threshold

    @admin.display(description="On hand", ordering="units_on_hand")
    def on_hand(self, product):
        # The ledger sums to on hand: the number leads to its lines.
        return format_html('<a href="{}" title="Ledger">{}</a>', ledger_url(product), product.units_on_hand)

    @admin.display(description="Reserved", ordering="units_reserved")
    def reserved(self, product):
        return product.units_reserved

    @admin.display(description="Available", ordering="units_available")
    def available(self, product):
        if product.is_low_on_stock:
            return format_html(
                '<span class="low-stock" title="At or below its threshold">{} low</span>', product.units_available
            )
        return product.units_available

    def get_list_display(self, request):
        if not request.user.has_perm(ADJUST):
            return self.list_display

        @admin.display(description="Stock")
        def stock_actions(product):
            links = stock_links(product, can_adjust=True)[:-1]  # the ledger is behind the on-hand number
            return format_html_join(" · ", '<a href="{1}">{0}</a>', links)

        return [*self.list_display, stock_actions]

    def changelist_view(self, request, extra_context=None):
        extra = {"can_import": request.user.has_perm(IMPORT), "can_export": request.user.has_perm(EXPORT)}
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        product = self.get_object(request, object_id)
        links = stock_links(product, can_adjust=request.user.has_perm(ADJUST)) if product else []
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "stock_links": links})

    def get_urls(self):
        def view(url, function, name):
            return path(url, self.admin_site.admin_view(function), name=f"inventory_product_{name}")

        return [
            view("<int:product_id>/restock/", self.restock_view, "restock"),
            view("<int:product_id>/adjust/", self.adjust_view, "adjust"),
            view("import/", self.import_view, "import"),
            view("export/", self.export_view, "export"),
            *super().get_urls(),
        ]

    def _page(self, request, template: str, title: str, **context):
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": title, **context}
        return TemplateResponse(request, f"admin/inventory/product/{template}", context)

    def restock_view(self, request, product_id: int):
        return self._stock_change_view(request, product_id, restock=True)

    def adjust_view(self, request, product_id: int):
        return self._stock_change_view(request, product_id, restock=False)

    def _stock_change_view(self, request, product_id: int, *, restock: bool):
        """Restock or adjust one product: a delta and a reason, applied under the row lock."""
        require_permission(request.user, ADJUST)
        product = get_object_or_404(products_with_stock(), pk=product_id)
        form = StockChangeForm(request.POST or None, restock=restock, initial={"submission_key": uuid.uuid4()})
        if request.method == "POST" and form.is_valid():
            try:
                stock = adjust_stock(
                    product=product,
                    delta=form.cleaned_data["quantity"],
                    reason=StockMovement.Reason.RESTOCK if restock else StockMovement.Reason.ADJUSTMENT,
                    user=request.user,
                    note=form.cleaned_data["reason"],
                    submission_key=form.cleaned_data["submission_key"],
                )
            except StockAdjustmentError as error:
                form.add_error("quantity", str(error))
            else:
                self.message_user(
                    request,
                    f"{product.sku}: {form.cleaned_data['quantity']:+d} units ({form.cleaned_data['reason']}). "
                    f"Now {stock.on_hand} on hand, {stock.available} available.",
                    messages.SUCCESS,
                )
                return redirect(ledger_url(product))
        verb = "Restock" if restock else "Adjust stock of"
        return self._page(
            request, "stock_change.html", f"{verb} {product.sku}", product=product, form=form, restock=restock
        )

    def import_view(self, request):
        """Upload a CSV, see what each row would change (or what is wrong with it), then import it."""
        require_permission(request.user, IMPORT)
        form = StockImportForm(request.POST or None, request.FILES or None)
        context: dict[str, object] = {"form": form, "shop_currencies": settings.SHOP_CURRENCIES}
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            name = upload.name if upload else form.cleaned_data["file_name"]
            try:
                text = decode_stock_csv(upload.read()) if upload else form.cleaned_data["csv_text"]
                rows = parse_stock_csv(text)
                if "apply" in request.POST and not upload:
                    result = apply_stock_import(rows, user=request.user, source=name)
                    self.message_user(request, f"Imported {name}: {result}.", messages.SUCCESS)
                    return redirect("admin:inventory_product_changelist")
                previews = preview_stock_import(rows)
                context.update(
                    previews=previews,
                    applicable=not any(p.error for p in previews),
                    changing=sum(not p.unchanged for p in previews),
                    confirm=StockImportForm(initial={"csv_text": text, "file_name": name}),
                )
            except StockImportError as error:
                context["errors"] = error.errors
            context["file_name"] = name
        return self._page(request, "import.html", "Import stock from CSV", **context)

    def export_view(self, request):
        require_permission(request.user, EXPORT)
        return csv_download(f"products-{timezone.localdate():%Y-%m-%d}.csv", product_rows())


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    """The stock ledger, newest first; per product from the product list's Ledger link."""

    list_display = ["when", "product", "change", "reason", "note", "order", "user"]
    list_filter = ["reason"]
    date_hierarchy = "created_at"
    search_fields = ["product__sku", "product__name", "order__reference", "note"]
    list_select_related = ["product", "order", "user"]
    ordering = ["-created_at", "-id"]

    @admin.display(description="When", ordering="created_at")
    def when(self, line):
        return line.created_at

    @admin.display(description="Change", ordering="quantity")
    def change(self, line):
        return f"{line.quantity:+d}"

    def get_list_display(self, request):
        # On one product's ledger, the product column would say the same on every line.
        if "product__id__exact" in request.GET:
            return [name for name in self.list_display if name != "product"]
        return self.list_display

    def changelist_view(self, request, extra_context=None):
        extra = {"can_export": request.user.has_perm(EXPORT)}
        product_id = request.GET.get("product__id__exact", "")
        product = Product.objects.filter(pk=product_id).first() if product_id.isdigit() else None
        if product:
            extra["title"] = f"Ledger of {product}"
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="inventory_stockmovement_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request):
        """The ledger lines of a period as CSV; without a valid period, the form asking for one."""
        require_permission(request.user, EXPORT)
        today = timezone.localdate()
        form = LedgerPeriodForm(request.GET or None, initial={"start": today - timedelta(days=30), "end": today})
        if form.is_valid():
            start, end = form.cleaned_data["start"], form.cleaned_data["end"]
            return csv_download(f"ledger-{start:%Y-%m-%d}-to-{end:%Y-%m-%d}.csv", ledger_rows(start, end))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Export the ledger",
            "form": form,
        }
        return TemplateResponse(request, "admin/inventory/stockmovement/export.html", context)
