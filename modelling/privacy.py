"""What the models hold about a customer, for marketing.privacy's export:
the predictions about them and the contact lists they were put on."""

from __future__ import annotations

from marketing.models import ClusterMembership, Customer, CustomerPrediction
from modelling.models import CustomerScore, TargetingEntry


def customer_scores_export(customer: Customer) -> list[dict]:
    return [
        {"model_version": version_id, "campaign": campaign, "kind": kind,
         "uplift": uplift, "best_arm": best_arm, "uplift_by_arm": uplift_by_arm,
         "response": response, "scored_at": scored_at.isoformat()}
        for version_id, campaign, kind, uplift, best_arm, uplift_by_arm, response, scored_at
        in CustomerScore.objects.of_customer(customer).order_by("model_version_id")
        .values_list("model_version_id", "model_version__campaign__key",
                     "model_version__kind", "uplift", "best_arm", "uplift_by_arm",
                     "response", "scored_at")
    ]


def customer_targeting_entries_export(customer: Customer) -> list[dict]:
    return [
        {"targeting_list": list_id, "campaign": campaign,
         "created_at": created_at.isoformat(), "rank": rank, "arm": arm, "uplift": uplift,
         "expected_profit": expected_profit}
        for list_id, campaign, created_at, rank, arm, uplift, expected_profit
        in TargetingEntry.objects.filter(customer=customer).order_by("targeting_list_id")
        .values_list("targeting_list_id", "targeting_list__campaign__key",
                     "targeting_list__created_at", "rank", "arm", "uplift",
                     "expected_profit")
    ]


def customer_model_rows_erase(customer: Customer) -> int:
    """Erasure: delete the predictions about the customer and their places on contact lists.

    Scores and entries are derived rows: a rescore or a new list would not
    write them again (erased customers are never scored or listed). A
    list's stored totals (size, expected profit) keep counting the entry:
    they describe the list as it was decided, and hold nothing personal.
    Follow-up offers stay, like assignments: a follow-up's analysis reads
    them, and they are linked to the erased row only.
    """
    scores, _ = CustomerScore.objects.filter(customer=customer).delete()
    entries, _ = TargetingEntry.objects.filter(customer=customer).delete()
    return scores + entries
def customer_behaviour_export(customer: Customer) -> list[dict]:
    """Published churn risk and expected revenue, and learned-cluster memberships."""
    scores = [{"score": name, "value": value, "model_version": version,
               "scored_at": scored_at.isoformat()}
              for name, value, version, scored_at in CustomerPrediction.objects
              .filter(customer=customer).order_by("name")
              .values_list("name", "value", "model_version_id", "scored_at")]
    clusters = [{"segmentation_run": run_id, "cluster": cluster,
                 "assigned_at": assigned_at.isoformat()}
                for run_id, cluster, assigned_at in ClusterMembership.objects
                .filter(customer=customer).order_by("run_id")
                .values_list("run_id", "cluster", "assigned_at")]
    return scores + clusters
