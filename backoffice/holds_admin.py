"""Holds in the back office: the list of holds (on and past), placing one, releasing one.

A hold is placed and released through `orders.holds`, each with a required reason, by a
holder of `orders.hold_pipeline`; a refusal is the 403 page naming that permission. The rows
are a record (who, why, when placed and released): nobody edits or deletes them.
"""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path

from framework.permissions import require_permission
from orders import holds
from orders.models import HoldSide, PipelineHold, ScheduledRetry

HOLD_PERMISSION = "orders.hold_pipeline"


class PlaceHoldForm(forms.Form):
    side = forms.ChoiceField(choices=HoldSide.choices, label="Hold")
    reason = forms.CharField(
        max_length=300,
        widget=forms.TextInput(attrs={"size": 60}),
        label="Reason (shown on every order it holds, and in the alarm)",
    )


class ReleaseHoldForm(forms.Form):
    reason = forms.CharField(
        max_length=300, widget=forms.TextInput(attrs={"size": 60}), label="Reason (kept in each order's history)"
    )


@admin.register(PipelineHold)
class PipelineHoldAdmin(admin.ModelAdmin):
    list_display = ("side", "reason", "placed_by", "placed_at", "released_by", "released_at", "release_reason")
    list_filter = ("side", ("released_at", admin.EmptyFieldListFilter))
    readonly_fields = list_display
    change_list_template = "admin/orders/pipelinehold/change_list.html"
    change_form_template = "admin/orders/pipelinehold/change_form.html"

    def has_add_permission(self, request) -> bool:
        return False  # placed through "Place a hold", with its reason, not the model's form

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("place/", view(self.place_view), name="orders_pipelinehold_place"),
            path("<int:hold_id>/release/", view(self.release_view), name="orders_pipelinehold_release"),
            *super().get_urls(),
        ]

    def _context(self, request, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}

    def place_view(self, request):
        """Place a hold on one side of the pipeline, with a reason."""
        require_permission(request.user, "orders.view_pipelinehold")
        require_permission(request.user, HOLD_PERMISSION)
        form = PlaceHoldForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                hold = holds.place_hold(
                    side=form.cleaned_data["side"], reason=form.cleaned_data["reason"], manager=request.user.username
                )
            except holds.HoldRefused as refusal:
                form.add_error(None, str(refusal))
            else:
                self.message_user(request, f"{hold.get_side_display()} are held: {hold.reason}", messages.WARNING)
                return redirect("admin:orders_pipelinehold_changelist")
        return TemplateResponse(
            request, "admin/orders/pipelinehold/hold_form.html", self._context(request, "Place a hold", form=form)
        )

    def release_view(self, request, hold_id: int):
        """Release a hold, with a reason: the orders it held go on at once."""
        require_permission(request.user, "orders.view_pipelinehold")
        require_permission(request.user, HOLD_PERMISSION)
        hold = get_object_or_404(PipelineHold, pk=hold_id)
        form = ReleaseHoldForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                resumed = holds.release_hold(hold, reason=form.cleaned_data["reason"], manager=request.user.username)
            except holds.HoldRefused as refusal:
                form.add_error(None, str(refusal))
            else:
                self.message_user(request, f"{hold.get_side_display()} released: {resumed} orders go on now.")
                return redirect("admin:orders_pipelinehold_changelist")
        waiting = ScheduledRetry.objects.filter(waiting_for__startswith=holds.HELD_PREFIX).count()
        title = f"Release the hold on {hold.get_side_display()}"
        return TemplateResponse(
            request,
            "admin/orders/pipelinehold/hold_form.html",
            self._context(request, title, form=form, hold=hold, waiting=waiting),
        )
