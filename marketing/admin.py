"""CRM data, segments and campaigns. Customers are written by the same service as the API."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.template.response import TemplateResponse

from core.admin_actions import TaskActionsMixin, action_report
from core.admin_audit import AuditedAdmin
from core.admin_paging import BigTableAdmin
from core.admin_readonly import SnapshotAdmin
from jobs.requests import segment_size_request
from marketing.customer_panels import customer_panels
from marketing.models import (
    BehaviourSnapshot,
    Campaign,
    Customer,
    CustomerAttribute,
    Event,
    Segment,
)
from marketing.privacy import customer_data_export, customer_erase
from marketing.segment_rules import segment_count_public, segment_rule_validate
from marketing.services import customer_attributes_clean, customers_upsert_bulk


@admin.register(CustomerAttribute)
class CustomerAttributeAdmin(AuditedAdmin):
    list_display = ["key", "label", "kind", "required", "is_personal"]


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ["external_id", "attributes", "marketing_consent"]

    def clean_attributes(self):
        """The API's check (customer_attributes_clean); updates are partial there too."""
        value = self.cleaned_data.get("attributes")
        adding = self.instance.pk is None
        try:
            clean = customer_attributes_clean({} if value is None else value, partial=not adding)
        except ValidationError as exc:
            raise ValidationError([f"{key.removeprefix('attributes.')}: {message}"
                                   for key, messages_ in exc.message_dict.items()
                                   for message in messages_]) from None
        # customers_upsert_bulk merges into the stored attributes, as the API
        # does: a key deleted (or set to null) here would silently come back.
        dropped = sorted(set(self.instance.attributes or {}) - set(clean)) if not adding else []
        if dropped:
            raise ValidationError(f"attributes cannot be removed here: {', '.join(dropped)}")
        return clean


@admin.register(Customer)
class CustomerAdmin(BigTableAdmin):
    """Saves go through marketing.services.customers_upsert_bulk, like the API's.

    An erased customer (erased_at set) is read-only: nothing personal may be
    written back, and the row stays so that experiment counts do not change.
    """

    form = CustomerForm
    list_display = ["external_id", "marketing_consent", "created_at", "erased_at"]
    list_filter = ["marketing_consent"]
    search_fields = ["external_id"]
    search_help_text = "A CRM id, or its beginning (case as stored)."

    def get_search_results(self, request, queryset, search_term):
        """CRM ids from their start, case as stored: the external_id index answers it,
        where Django's default (icontains) reads every customer."""
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(external_id__startswith=term), False

    actions = ["export_personal_data", "erase_personal_data"]

    def has_export_personal_data_permission(self, request):
        return request.user.has_perm("marketing.export_personal_data")

    def has_erase_personal_data_permission(self, request):
        return request.user.has_perm("marketing.erase_personal_data")

    @admin.action(description="Export personal data (JSON, one customer)",
                  permissions=["export_personal_data"])
    def export_personal_data(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, "Select exactly one customer to export.")
            return None
        customer = queryset.get()
        data = customer_data_export(customer=customer, request=request)
        response = JsonResponse(data, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = (
            f'attachment; filename="customer-{customer.pk}-personal-data.json"')
        return response

    @admin.action(description="Erase personal data (irreversible)",
                  permissions=["erase_personal_data"])
    def erase_personal_data(self, request, queryset):
        """A confirmation page first; the erasure itself is marketing.privacy.customer_erase."""
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/marketing/customer/erase_confirmation.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta,
                "customers": queryset, "title": "Erase personal data?",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME})
        erased = 0
        for customer in queryset:
            customer_erase(customer=customer, request=request,
                           requested_by=f"user:{request.user.get_username()}")
            erased += 1
        messages.success(request, f"Erased the personal data of {erased} customer(s).")
        return None

    def get_readonly_fields(self, request, obj=None):
        fixed = ["created_at", "updated_at", "erased_at"]
        # The CRM id is how the service finds the customer; renaming would create another.
        return fixed if obj is None else ["external_id", *fixed]

    def has_change_permission(self, request, obj=None):
        return (obj is None or obj.erased_at is None) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return (obj is None or obj.erased_at is None) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        result = customers_upsert_bulk([{
            "external_id": obj.external_id, "attributes": form.cleaned_data["attributes"],
            "marketing_consent": form.cleaned_data["marketing_consent"]}],
            source=f"user:{request.user.get_username()}")
        if result.rejected:
            # Only a concurrent change gets here: the form ran the same checks.
            raise ValidationError(result.rejected[0]["errors"])
        obj.pk = Customer.objects.only("pk").get(external_id=obj.external_id).pk
        obj.refresh_from_db()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Panels of the apps above (assignments, scores, the model's explanation):
        # see marketing.customer_panels.
        customer = self.get_object(request, object_id)
        context = {}
        if customer is not None:
            context = {"customer_panels": customer_panels(customer),
                       **customer_summary(customer)}
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), **context})


RECENT_EVENTS = 20


def customer_summary(customer: Customer) -> dict:
    """Attributes as labelled rows, consent, and the latest events (two bounded queries)."""
    labels = dict(CustomerAttribute.objects.values_list("key", "label"))
    attributes = [{"key": key, "label": labels.get(key) or key.replace("_", " "),
                   "value": value}
                  for key, value in sorted((customer.attributes or {}).items())]
    events = list(Event.objects.filter(customer=customer)
                  .only("kind", "occurred_at", "value", "source")
                  .order_by("-occurred_at", "-id")[:RECENT_EVENTS])
    return {"customer": customer, "attribute_rows": attributes, "recent_events": events,
            "recent_limit": RECENT_EVENTS}


class RecentSourceFilter(admin.SimpleListFilter):
    """Sources to filter by, read from the latest events only.

    Django's own filter for a free-text column lists ``SELECT DISTINCT source``
    over the whole table: a scan of every event on each changelist view.
    """

    title = "source"
    parameter_name = "source"
    RECENT = 10_000

    def lookups(self, request, model_admin):
        # The distinct values of 10,000 strings, here: as ``id IN (latest ids)`` the
        # planner hash-joins the subquery against a scan of every event.
        recent = Event.objects.order_by("-id").values_list("source", flat=True)[:self.RECENT]
        return [(source, source) for source in sorted(set(recent))]

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


@admin.register(Event)
class EventAdmin(BigTableAdmin):
    list_display = ["customer", "kind", "occurred_at", "value", "source"]
    list_filter = ["kind", RecentSourceFilter]
    raw_id_fields = ["customer"]


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["key", "name", "description", "rule"]

    def clean_rule(self):
        """The API's check (segment_rule_validate): grammar, declared attributes, size."""
        rule = self.cleaned_data.get("rule")
        try:
            segment_rule_validate(rule)
        except ValidationError as exc:
            raise ValidationError([f"{key}: {message}" for key, messages_ in
                                   exc.message_dict.items() for message in messages_]) from None
        return rule


@admin.register(Segment)
class SegmentAdmin(TaskActionsMixin, AuditedAdmin):
    form = SegmentForm
    list_display = ["key", "name", "members", "counted_at"]
    readonly_fields = ["members", "counted_at"]

    @admin.display(description="member count")
    def members(self, segment):
        count, note = segment_count_public(segment)
        return f"{count} ({note})" if count is not None and note else (note or count)
    actions = ["count_members"]

    @admin.action(description="Count members (background task)", permissions=["run_tasks"])
    def count_members(self, request, queryset):
        action_report(request, lambda segment: segment_size_request(segment=segment), queryset,
                      f"Queued a member count for {queryset.count()} segment(s).", audit="run")


@admin.register(Campaign)
class CampaignAdmin(AuditedAdmin):
    list_display = ["name", "channel", "status", "cost_per_contact", "value_per_conversion",
                    "budget"]
    list_filter = ["status", "channel"]


@admin.register(BehaviourSnapshot)
class BehaviourSnapshotAdmin(SnapshotAdmin):
    """Built by beat (or ``behaviour_snapshots_refresh``), used by scoring."""

    list_display = ["spec_key", "as_of", "customers", "build_seconds", "ready_at"]
