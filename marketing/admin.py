from django.contrib import admin, messages

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


@admin.register(CustomerAttribute)
class CustomerAttributeAdmin(admin.ModelAdmin):
    list_display = ["key", "label", "kind", "required", "is_personal"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["external_id", "marketing_consent", "created_at", "erased_at"]
    list_filter = ["marketing_consent"]
    search_fields = ["external_id"]
    readonly_fields = ["created_at", "updated_at", "erased_at"]
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is slow

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Panels of the apps above (the model's explanation): see marketing.customer_panels.
        customer = self.get_object(request, object_id)
        panels = customer_panels(customer) if customer is not None else []
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), "customer_panels": panels})


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["customer", "kind", "occurred_at", "value", "source"]
    list_filter = ["kind", "source"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "member_count", "counted_at"]
    readonly_fields = ["member_count", "counted_at"]
    actions = ["count_members"]

    @admin.action(description="Count members (background task)")
    def count_members(self, request, queryset):
        for segment in queryset:
            segment_size_request(segment=segment)
        messages.info(request, f"Queued a member count for {queryset.count()} segment(s).")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "channel", "status", "cost_per_contact", "value_per_conversion",
                    "budget"]
    list_filter = ["status", "channel"]


@admin.register(BehaviourSnapshot)
class BehaviourSnapshotAdmin(admin.ModelAdmin):
    """Read-only: built by beat (or ``behaviour_snapshots_refresh``), used by scoring."""

    list_display = ["spec_key", "as_of", "customers", "build_seconds", "ready_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
