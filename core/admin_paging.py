"""Changelists of tables with millions of rows: no unbounded COUNT(*) per page view."""

from functools import cached_property

from django.core.paginator import Paginator

from core.admin_audit import AuditedAdmin

COUNT_CAP = 10_000


class BoundedCountPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` rows (``SELECT COUNT(*) FROM (... LIMIT cap)``).

    Django's changelist counts the filtered rows to number its pages; over a
    million customers or events that scan costs more than the page. Past the
    cap the list shows ``COUNT_CAP`` results and its pages end there: a filter
    or the search box narrows a list that long better than page 400 does.
    """

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[:COUNT_CAP].count()


class BigTableAdmin(AuditedAdmin):
    """For customers, events, assignments, scores, targeting entries."""

    paginator = BoundedCountPaginator
    show_full_result_count = False
