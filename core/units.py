"""The units the pages write numbers in: one currency, and what an effect is measured in.

An effect's unit follows what its metric counts: a rate's difference is in
percentage points (``"pp"``), a summed event value (revenue) is money
(``"money"``, in ``CURRENCY``), and a count of events is a plain signed
number of events per customer (``"count"``). ``core.templatetags.humanize_extra``
writes them (``{{ x|effect:unit }}``) and ``core.plots`` draws them (axis kinds
of the same names).
"""

# Campaigns carry no currency; every page and sentence shows this one.
CURRENCY = "€"
EFFECT_UNITS = ("pp", "money", "count")
