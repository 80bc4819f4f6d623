"""The order back office: find orders, read their whole execution, and act on them.

Orders are read-only here (no Save button): their state changes through the pipeline and
a manager's actions, each a service in `backoffice.actions` behind a confirmation page
that says what it will do (its plan, `backoffice.plans`), each allowed by its own
permission (`orders.redrive_order`, ...); a refusal is the 403 page naming the permission
that is missing. To add an action: its plan, its service, and a row of ORDER_ACTIONS.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import ClassVar, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.validators import MaxValueValidator
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.html import format_html

from backoffice import actions, plans
from backoffice.timeline import state_graph_svg, step_summaries
from framework.csv_response import csv_download
from framework.formatting import format_moment_compact
from framework.permissions import NamedActionRefusals, require_permission
from orders import selectors
from orders.flow import STEPS
from orders.models import FINAL_STATES, Notification, Order, OrderLine
from payments.authorizations import hold_lapses_at
from payments.models import Payment, Refund
from payments.refund_reasons import active_reasons
from payments.refunds import refundable_amount
from receipts.credit_notes import credit_note_download_url
from receipts.models import CreditNote, Receipt
from receipts.services import receipt_download_url


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ["sku", "name", "quantity", "unit_price", "line_total"]


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ["created_at", "amount", "currency", "status", "reason_code", "reason", "requested_by", "error"]


class CreditNoteInline(ReadOnlyInline):
    model = CreditNote
    verbose_name_plural = "Credit notes"
    fields = ["number_shown", "refund", "receipt", "created_at", "stored_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_view_permission(self, request, obj=None):
        # Part of the order, as its receipt is: whoever reads the order sees its credit notes.
        return request.user.has_perm("orders.view_order")

    @admin.display(description="Credit note")
    def number_shown(self, note: CreditNote):
        if not note.stored_at:
            return f"{note.number} (not stored yet)"
        # Our own view, which signs a fresh short-lived link when it is clicked.
        url = reverse("admin:orders_order_credit_note", args=[note.order_id, note.number])
        return format_html('<a href="{}">Download credit note {}</a>', url, note.number)


class NotificationInline(ReadOnlyInline):
    model = Notification
    verbose_name_plural = "Emails sent to the shopper"
    fields = ["kind", "status", "claimed_at", "sent_at", "error"]


# --- filters -------------------------------------------------------------------------------


class AttentionFilter(admin.SimpleListFilter):
    """What a manager should look at: flagged or redrivable FAILED orders, overdue ones, old holds."""

    title = "attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [(name, label) for name, (label, _) in selectors.ATTENTION.items()]

    def queryset(self, request, queryset):
        if (value := self.value()) in selectors.ATTENTION:
            return queryset.filter(selectors.ATTENTION[value][1]()).distinct()
        return queryset


class FailureCodeFilter(admin.AllValuesFieldListFilter):
    """The failure codes orders ended with; orders that did not fail are "None" rather than a
    link without text (which a screen reader cannot name)."""

    def choices(self, changelist):
        for choice in super().choices(changelist):
            yield {**choice, "display": choice["display"] or "None"}


class DateRangeFilter(admin.DateFieldListFilter):
    """Django's date filter (today, past 7 days, ...) plus a from-to form on the same parameters."""

    template = "admin/orders/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        ours = {self.lookup_kwarg_since, self.lookup_kwarg_until}
        # The form keeps every other filter and the search as they are.
        self.other_params = [(k, v) for k, values in request.GET.lists() if k not in ours for v in values]
        self.since = (request.GET.get(self.lookup_kwarg_since) or "")[:10]
        self.until = (request.GET.get(self.lookup_kwarg_until) or "")[:10]

    def queryset(self, request, queryset):
        # A day typed in the form means its midnight in the shop's time zone, not a naive time.
        for name, value in self.used_parameters.items():
            values = value if isinstance(value, list) else [value]
            if (day := parse_date(str(values[-1]))) and len(str(values[-1])) == 10:
                # Django keeps each parameter's values as a list; django-stubs types them one value each.
                self.used_parameters[name] = [timezone.make_aware(datetime.combine(day, time.min))]  # type: ignore[assignment]
        return super().queryset(request, queryset)


# --- the confirmation pages ----------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"size": 60}))
    # Rendered into every form; a form posted without one simply is not protected from a replay.
    action_token = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, order: Order | None = None, **kwargs):
        super().__init__(*args, **kwargs)  # `order`: for forms whose fields depend on it

    def action_arguments(self) -> dict:
        """What the action takes from this form, beside the order and the manager."""
        return {"reason": self.cleaned_data["reason"], "action_token": self.cleaned_data["action_token"]}


class RefundForm(ReasonForm):
    # An empty amount once meant "everything": refunding all is now a choice of its own,
    # and an amount must be given, above zero, when refunding part.
    REFUND_ALL, REFUND_PART = "all", "part"

    refund = forms.ChoiceField(widget=forms.RadioSelect, label="How much to refund")
    amount = forms.DecimalField(required=False, min_value=Decimal("0.01"), decimal_places=2, label="Amount")
    # Required: refunds are counted by it (the monitoring page, the CSV export).
    refund_reason = forms.ChoiceField(label="Refund reason", help_text="From the list kept under Payments.")

    def __init__(self, *args, order: Order, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["refund_reason"]).choices = [("", "---------")] + [
            (listed.code, listed.label) for listed in active_reasons()
        ]
        payment = Payment.objects.filter(order=order).first()
        self.left = refundable_amount(payment) if payment else Decimal("0")
        currency = payment.currency if payment else order.currency
        cast(forms.ChoiceField, self.fields["refund"]).choices = [
            (self.REFUND_ALL, f"Refund all ({self.left} {currency})"),
            (self.REFUND_PART, "Refund part: the amount below"),
        ]
        amount = self.fields["amount"]
        amount.validators.append(MaxValueValidator(self.left, f"At most {self.left} {currency} is left to refund."))
        amount.widget.attrs.update(max=self.left, placeholder=f"{self.left}")
        amount.help_text = f"With \u201cRefund part\u201d: more than 0, at most {self.left} {currency}."
        returnable = plans.returnable_units(order)
        self.return_fields = {}
        for line in order.lines.all():
            name = f"return_{line.product_id}"
            self.fields[name] = forms.IntegerField(
                label=f"Back to stock: {line.sku}",
                min_value=0,
                max_value=returnable.get(line.product_id, 0),
                initial=0,
                required=False,
                help_text=f"Of {returnable.get(line.product_id, 0)} sold and not returned.",
            )
            self.return_fields[name] = line.product_id
        self.order_fields(["refund", "amount", "refund_reason", *self.return_fields, "reason"])

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if data.get("refund") == self.REFUND_PART and data.get("amount") is None and "amount" not in self.errors:
            self.add_error("amount", "Give the amount to refund, or choose \u201cRefund all\u201d.")
        return data

    def refund_amount(self) -> Decimal | None:
        """The amount to refund, None for all that is left."""
        return None if self.cleaned_data["refund"] == self.REFUND_ALL else self.cleaned_data["amount"]

    def return_units(self) -> dict[int, int]:
        return {product: self.cleaned_data.get(name) or 0 for name, product in self.return_fields.items()}

    def action_arguments(self) -> dict:
        return {
            **super().action_arguments(),
            "amount": self.refund_amount(),
            "refund_reason": self.cleaned_data["refund_reason"],
            "return_units": self.return_units(),
        }


@dataclass(frozen=True)
class OrderAction:
    """One action on one order: who may, what its page says it will do (`plan`), and the
    service it calls (`run`, given the order, the manager and the form's arguments)."""

    title: str
    button: str
    permission: str
    plan: Callable[[Order], plans.Plan]
    run: Callable[..., actions.ActionResult]
    form: type[ReasonForm] = ReasonForm
    reason_label: str = "Reason (kept in the order's history)"
    danger: bool = False


ORDER_ACTIONS = {
    "redrive": OrderAction(
        "Redrive from the failed step",
        "Redrive",
        "orders.redrive_order",
        plans.plan_redrive,
        actions.redrive_order,
    ),
    "retry": OrderAction(
        "Retry the stuck step now",
        "Retry now",
        "orders.retry_order_step",
        plans.plan_retry,
        actions.retry_stuck_step,
    ),
    "handled": OrderAction(
        "Mark handled",
        "Mark handled",
        "orders.mark_order_handled",
        plans.plan_mark_handled,
        actions.mark_handled,
        reason_label="Note: what was done (kept in the order's history)",
    ),
    "resend": OrderAction(
        "Resend the confirmation email",
        "Send a copy",
        "orders.resend_order_email",
        plans.plan_resend,
        actions.resend_confirmation,
    ),
    "regenerate": OrderAction(
        "Regenerate the missing receipt",
        "Regenerate",
        "orders.regenerate_receipt",
        plans.plan_regenerate,
        actions.regenerate_receipt,
    ),
    "refund": OrderAction(
        "Refund all or part",
        "Refund",
        "orders.refund_order",
        plans.plan_refund,
        actions.refund_order,
        form=RefundForm,
        reason_label="Note (kept in the order's history)",
    ),
    "cancel": OrderAction(
        "Cancel the order",
        "Cancel the order",
        "orders.cancel_order",
        plans.plan_cancel,
        actions.cancel_order_for_manager,
        reason_label="Reason (shown to the shopper, in their email)",
        danger=True,
    ),
}


def count_orders(count: int) -> str:
    """ "1 order", "3 orders": a bulk page's title counts in the shop's words."""
    return f"{count} {'order' if count == 1 else 'orders'}"


RECEIPT_NUMBER = re.compile(r"^R-?0*(\d+)$", re.IGNORECASE)


@admin.register(Order)
class OrderAdmin(NamedActionRefusals, admin.ModelAdmin):
    """Orders, read-only: found by filters and search, steered by the actions above."""

    # Seven columns that fit a 1280 px laptop beside the filters: the amount with its currency,
    # the time in short (tests/browser/test_admin_pages_browser.py measures it).
    list_display = ["reference", "email", "state", "payment_status", "total_shown", "attention", "created"]
    list_filter = [
        AttentionFilter,
        "state",
        "payment__status",
        ("created_at", DateRangeFilter),
        "lines__sku",
        ("failure_code", FailureCodeFilter),
    ]
    search_fields = ["reference", "email", "payment__provider_reference"]
    search_help_text = "Reference, email, receipt number (R-00000012) or the provider's payment id (pi_...)."
    list_select_related = ["payment"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, RefundInline, CreditNoteInline, NotificationInline]
    actions = ["redrive_selected", "retry_selected", "mark_handled_selected", "cancel_selected"]
    permission_names = {
        "redrive": "orders.redrive_order",
        "retry": "orders.retry_order_step",
        "mark_handled": "orders.mark_order_handled",
        "cancel": "orders.cancel_order",
    }
    # With the "Retrying now" filter on: what is failing, how often it was tried, when next.
    retrying_list_display = ["reference", "state", "retry_step", "retry_attempts", "retry_error", "next_try"]
    change_form_template = "admin/orders/order/change_form.html"
    change_list_template = "admin/orders/order/change_list.html"
    fields: ClassVar[tuple[str, ...]] = (
        "reference",
        "email",
        "state",
        "currency",
        "subtotal",
        "tax",
        "total",
        "payment_method",
        "payment_summary",
        "authorization_lapses",
        "receipt_download",
        "failure_code",
        "failure_reason",
        "attention",
        "redrive_count",
        "created_at",
        "updated_at",
        "completed_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # every change is an action with its own permission

    def has_delete_permission(self, request, obj=None):
        return False

    def has_redrive_permission(self, request):
        return request.user.has_perm(self.permission_names["redrive"])

    def has_retry_permission(self, request):
        return request.user.has_perm(self.permission_names["retry"])

    def has_cancel_permission(self, request):
        return request.user.has_perm(self.permission_names["cancel"])

    def has_mark_handled_permission(self, request):
        return request.user.has_perm(self.permission_names["mark_handled"])

    def _lists_retrying(self, request) -> bool:
        return request.GET.get(AttentionFilter.parameter_name) == "retrying"

    def get_list_display(self, request):
        return self.retrying_list_display if self._lists_retrying(request) else super().get_list_display(request)

    def get_queryset(self, request):
        orders = selectors.with_attention(super().get_queryset(request))
        # Only the retrying list reads each order's latest retry: a page of lookups, not every order's.
        return selectors.with_latest_retry(orders) if self._lists_retrying(request) else orders

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if match := RECEIPT_NUMBER.match(search_term.strip()):
            results |= queryset.filter(receipt__pk=int(match.group(1)))
        return results, True

    @admin.display(description="Payment", ordering="payment__status")
    def payment_status(self, order):
        payment = getattr(order, "payment", None)
        return payment.get_status_display() if payment else "-"

    @admin.display(description="Total", ordering="total")
    def total_shown(self, order):
        return f"{order.total} {order.currency}"

    @admin.display(description="Created", ordering="created_at")
    def created(self, order):
        return format_moment_compact(order.created_at)

    @admin.display(description="Attention", ordering="-attention")
    def attention(self, order):
        # Words, not Django's boolean icons: a red "no" on every calm order read as an alarm.
        if not order.attention:
            return "No"
        return "Flagged" if order.needs_attention else "Failed, redrivable"

    @admin.display(description="Failing step")
    def retry_step(self, order):
        return order.retry_step or "-"

    @admin.display(description="Attempts made")
    def retry_attempts(self, order):
        step = STEPS.get(order.retry_step or "")
        return f"{order.retry_attempt} of {step.retry.max_attempts}" if step else "-"

    @admin.display(description="Last error")
    def retry_error(self, order):
        error = order.retry_error or ""
        return error if len(error) <= 120 else error[:119] + "\u2026"

    @admin.display(description="Next try at")
    def next_try(self, order):
        due = order.retry_row_due or (parse_datetime(order.retry_due) if order.retry_due else None)
        if due is None:
            return "-"
        # Retries are seconds apart: the time to the second, and how far off (or late) it is.
        seconds = round((due - timezone.now()).total_seconds())
        when = f"in {seconds} s" if seconds >= 0 else f"{-seconds} s late"
        return f"{timezone.localtime(due):%H:%M:%S} ({when})"

    @admin.display(description="Payment")
    def payment_summary(self, order):
        payment = getattr(order, "payment", None)
        if payment is None:
            return "-"
        card = f"{payment.card_brand} ****{payment.card_last4}" if payment.card_last4 else ""
        amount = f"{payment.amount} {payment.currency}"
        refunded = f", {payment.amount_refunded} refunded" if payment.amount_refunded else ""
        return f"{payment.status} {amount}{refunded} {card} ({payment.provider} {payment.provider_reference})"

    @admin.display(description="Card hold lapses")
    def authorization_lapses(self, order):
        """When the uncaptured authorisation lapses (the provider's word), and what the policy will do."""
        payment = getattr(order, "payment", None)
        lapses = hold_lapses_at(payment) if payment else None
        if lapses is None:
            return "-"
        hours_left = int((lapses - timezone.now()).total_seconds() // 3600)
        when = format_moment_compact(lapses)
        if lapses <= timezone.now():
            return f"{when} (lapsed)"
        return (
            f"{when} (in {hours_left} h; the lapse policy, {settings.AUTHORIZATION_LAPSE_POLICY}, "
            f"acts {settings.AUTHORIZATION_LAPSE_ACT_HOURS} h before)"
        )

    @admin.display(description="Receipt")
    def receipt_download(self, order):
        receipt = getattr(order, "receipt", None)
        if receipt is None or not receipt.stored_at:
            return "-"
        # A link to our own view, which signs a fresh short-lived link when it is clicked.
        url = reverse("admin:orders_order_receipt", args=[order.pk])
        return format_html('<a href="{}">Download receipt {}</a>', url, receipt.number)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("export.csv", view(self.export_view), name="orders_order_export"),
            path("<int:order_id>/refund/", view(self.action_view), {"name": "refund"}, name="orders_order_refund"),
            path("<int:order_id>/action/<str:name>/", view(self.action_view), name="orders_order_action"),
            path("<int:order_id>/note/", view(self.note_view), name="orders_order_note"),
            path("<int:order_id>/execution.json", view(self.execution_view), name="orders_order_execution"),
            path("<int:order_id>/receipt/", view(self.download_receipt_view), name="orders_order_receipt"),
            path(
                "<int:order_id>/credit-notes/<str:number>/",
                view(self.download_credit_note_view),
                name="orders_order_credit_note",
            ),
            *super().get_urls(),
        ]

    # --- the order page -------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        extra = {}
        if order is not None:
            events = list(order.events.order_by("id"))
            extra = {
                "graph": state_graph_svg(order, events),
                "step_summaries": step_summaries(events),
                "events": events,
                "ledger_lines": selectors.order_ledger_lines(order),
                "order_actions": [
                    (name, action, reverse("admin:orders_order_action", args=[order.pk, name]))
                    for name, action in ORDER_ACTIONS.items()
                    if request.user.has_perm(action.permission) and not action.plan(order).refusal
                ],
                "note_token": actions.new_action_token(),
                "note_url": reverse("admin:orders_order_note", args=[order.pk]),
                "execution_url": reverse("admin:orders_order_execution", args=[order.pk]),
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _order(self, request, order_id: int) -> Order:
        require_permission(request.user, "orders.view_order")  # a 403 naming it, as the admin's own pages
        return get_object_or_404(Order, pk=order_id)

    def action_view(self, request, order_id: int, name: str):
        """An action's confirmation page: what it will do, a reason, one button; then the action."""
        if name not in ORDER_ACTIONS:
            raise Http404
        action = ORDER_ACTIONS[name]
        require_permission(request.user, action.permission)
        order = self._order(request, order_id)
        if request.method == "POST":
            form = action.form(request.POST, order=order)
            if form.is_valid():
                try:
                    result = action.run(order, manager=request.user.get_username(), **form.action_arguments())
                except actions.ActionRefused as refusal:
                    form.add_error(None, str(refusal))
                else:
                    level = messages.WARNING if result.already_done else messages.SUCCESS
                    self.message_user(request, result.message, level)
                    return redirect("admin:orders_order_change", order.pk)
        else:
            form = action.form(initial={"action_token": actions.new_action_token()}, order=order)
        form.fields["reason"].label = action.reason_label
        order.refresh_from_db()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{action.title}: {order.reference}",
            "order": order,
            "action": action,
            "plan": action.plan(order),
            "form": form,
        }
        return TemplateResponse(request, "admin/orders/order/confirm_action.html", context)

    def note_view(self, request, order_id: int):
        """Add an internal note (anyone who may act on orders: the retry permission stands for it)."""
        if request.method != "POST":
            return redirect("admin:orders_order_change", order_id)
        require_permission(request.user, "orders.retry_order_step")
        order = self._order(request, order_id)
        try:
            actions.add_note(
                order,
                manager=request.user.get_username(),
                note=request.POST.get("note", ""),
                action_token=request.POST.get("action_token", ""),
            )
        except actions.ActionRefused as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
        return redirect("admin:orders_order_change", order.pk)

    def execution_view(self, request, order_id: int):
        """The whole execution of the order as JSON, to download (as Step Functions' console exports it)."""
        order = self._order(request, order_id)
        response = JsonResponse(selectors.order_execution(order), json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="{order.reference}-execution.json"'
        return response

    def download_receipt_view(self, request, order_id: int):
        """Send a manager to a freshly signed link to the order's receipt."""
        require_permission(request.user, "orders.download_receipt")
        order = get_object_or_404(Order.objects.select_related("receipt"), pk=order_id)
        receipt = getattr(order, "receipt", None)
        if receipt is None or not receipt.stored_at:
            raise Http404("This order has no stored receipt.")
        return HttpResponseRedirect(receipt_download_url(receipt, base_url=request.build_absolute_uri("/")[:-1]))

    def download_credit_note_view(self, request, order_id: int, number: str):
        """Send a manager to a freshly signed link to one of the order's credit notes."""
        require_permission(request.user, "orders.download_receipt")
        order = get_object_or_404(Order, pk=order_id)
        note = selectors.stored_credit_note(order.reference, number)
        if note is None:
            raise Http404("This order has no such stored credit note.")
        return HttpResponseRedirect(credit_note_download_url(note, base_url=request.build_absolute_uri("/")[:-1]))

    # --- the list: export and bulk actions ------------------------------------------------

    def export_view(self, request):
        """The order list as it is filtered and searched now, as CSV."""
        require_permission(request.user, "orders.export_orders")
        changelist = self.get_changelist_instance(request)
        orders = (
            changelist.get_queryset(request)
            .select_related("payment", "receipt")
            .prefetch_related("lines", "refunds__reason_code", "credit_notes")
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return csv_download(f"orders-{stamp}.csv", order_rows(orders))

    def _bulk(self, request, queryset, name: str):
        """A bulk redrive, retry or mark handled: a confirmation page first, then each order (at most the cap)."""
        action = ORDER_ACTIONS[name]
        orders = list(queryset.order_by("pk"))
        if request.POST.get("confirmed"):
            form = ReasonForm(request.POST)
            if form.is_valid():
                results, left = actions.act_on_orders(
                    action.run,
                    orders,
                    manager=request.user.get_username(),
                    reason=form.cleaned_data["reason"],
                    action_token=form.cleaned_data["action_token"],
                )
                for result in results:
                    self.message_user(
                        request, result.message, messages.WARNING if result.already_done else messages.INFO
                    )
                if left:
                    self.message_user(
                        request,
                        f"Not done: {len(left)} more orders, over the cap of {len(results)} per click; "
                        "select them again.",
                        messages.WARNING,
                    )
                return None
        else:
            form = ReasonForm(initial={"action_token": actions.new_action_token()})
        form.fields["reason"].label = action.reason_label
        title = f"{action.title}: {count_orders(len(orders))}"
        return self._confirm_bulk(request, name, orders, form, title, cap=settings.ORDER_BULK_ACTION_CAP)

    def _confirm_bulk(self, request, name: str, orders: list[Order], form: ReasonForm, title: str, cap: int | None):
        """The confirmation page of a bulk action: each selected order and what will happen to it."""
        action = ORDER_ACTIONS[name]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "action": action,
            "action_name": f"{name}_selected",
            "orders": [(order, action.plan(order)) for order in orders],
            "cap": cap,
            "form": form,
            "selected_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/orders/order/confirm_bulk.html", context)

    @admin.action(description="Redrive selected FAILED orders from their failed step…", permissions=["redrive"])
    def redrive_selected(self, request, queryset):
        return self._bulk(request, queryset, "redrive")

    @admin.action(description="Retry the stuck step of selected orders…", permissions=["retry"])
    def retry_selected(self, request, queryset):
        return self._bulk(request, queryset, "retry")

    @admin.action(description="Mark selected orders handled (a note required)…", permissions=["mark_handled"])
    def mark_handled_selected(self, request, queryset):
        return self._bulk(request, queryset, "handled")

    @admin.action(
        description="Cancel selected orders (refund or void, stock back, shopper emailed)…", permissions=["cancel"]
    )
    def cancel_selected(self, request, queryset):
        orders = list(queryset.exclude(state__in=FINAL_STATES).order_by("pk"))
        finished = queryset.filter(state__in=FINAL_STATES)
        for order in finished:
            # Messages open with a word: admin capitalises the first letter, and references are case-sensitive.
            self.message_user(
                request, f"Not cancelled: {order.reference} is {order.state} and cannot be cancelled", messages.WARNING
            )
        if not orders:
            return None
        if request.POST.get("confirmed"):
            form = ReasonForm(request.POST)
            if form.is_valid():
                for order in orders:
                    try:
                        result = actions.cancel_order_for_manager(
                            order, manager=request.user.get_username(), reason=form.cleaned_data["reason"]
                        )
                    except actions.ActionRefused as refusal:
                        self.message_user(request, str(refusal), messages.WARNING)
                    else:
                        self.message_user(request, result.message, messages.SUCCESS)
                return None
        else:
            form = ReasonForm(initial={"action_token": actions.new_action_token(), "reason": "Cancelled by the shop."})
        return self._confirm_bulk(request, "cancel", orders, form, f"Cancel {count_orders(len(orders))}", cap=None)


EXPORT_COLUMNS = [
    "reference",
    "created_at",
    "email",
    "state",
    "lines",
    "currency",
    "subtotal",
    "tax",
    "total",
    "payment_status",
    "provider_reference",
    "amount_refunded",
    "refund_reasons",
    "receipt",
    "credit_notes",
    "failure_code",
    "needs_attention",
    "redrive_count",
]


def order_rows(orders: QuerySet[Order]) -> Iterator[list]:
    """The header, then one row per order, read in chunks so a long export never sits whole in memory."""
    yield EXPORT_COLUMNS
    for order in orders.iterator(chunk_size=2000):
        yield _export_row(order)


def _export_row(order: Order) -> list:
    payment: Payment | None = getattr(order, "payment", None)
    receipt: Receipt | None = getattr(order, "receipt", None)
    return [
        order.reference,
        order.created_at.isoformat(),
        order.email,
        order.state,
        "; ".join(f"{line.quantity} x {line.sku}" for line in order.lines.all()),
        order.currency,
        order.subtotal,
        order.tax,
        order.total,
        payment.status if payment else "",
        payment.provider_reference if payment else "",
        payment.amount_refunded if payment else "",
        "; ".join(
            f"{refund.amount} {refund.reason_code.label}"
            for refund in order.refunds.all()
            if refund.status == Refund.Status.SUCCEEDED
        ),
        receipt.number if receipt and receipt.stored_at else "",
        "; ".join(note.number for note in order.credit_notes.all() if note.stored_at),
        order.failure_code,
        order.needs_attention,
        order.redrive_count,
    ]


# The holds on a side of the pipeline have their own small admin (placing and releasing them).
from backoffice import holds_admin  # noqa: E402,F401
