"""The audit log: who ran, exported, erased, started, stopped or changed what.

Every interface (admin action, API view, management command, beat) that does
something a reviewer may later ask about calls ``audit_record`` once, in the
same transaction as the change, so a rolled-back change leaves no entry and a
committed one always has its entry. Entries are never edited or deleted
through the product: the admin shows them read-only.

``target`` is a short, non-personal reference ("experiment 12",
"customer pseudonym 3f9a...") and never a CRM id or an e-mail address: the
log outlives erasure, so it must hold nothing that identifies a person.
"""

from __future__ import annotations

from core.models import AuditEntry


def audit_actor(request=None, *, user=None, api_key=None, system: str = "") -> dict:
    """The actor fields for an entry, from a request (admin user or API key) or given outright."""
    if request is not None:
        auth = getattr(request, "auth", None)
        if api_key is None and auth is not None and auth.__class__.__name__ == "ApiKey":
            api_key = auth
        req_user = getattr(request, "user", None)
        if user is None and api_key is None and req_user is not None and req_user.is_authenticated:
            user = req_user
    if user is not None:
        return {"user_id": user.pk, "actor": f"user:{user.get_username()}"}
    if api_key is not None:
        return {"actor": f"api-key:{api_key.name}"}
    return {"actor": f"system:{system or 'unknown'}"}


def audit_record(action: str, target: str, *, request=None, user=None, api_key=None,
                 system: str = "", detail: dict | None = None) -> AuditEntry:
    """Write one entry. ``action`` is a verb from ``AuditEntry.Action``."""
    if action not in AuditEntry.Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    actor = audit_actor(request, user=user, api_key=api_key, system=system)
    return AuditEntry.objects.create(action=action, target=target[:200],
                                     detail=detail or {}, **actor)


def audit_target(obj) -> str:
    """``"experiments.experiment 12"``: the row by its table and id, never by its text
    (``str()`` of a customer is their CRM id)."""
    return f"{obj._meta.label_lower} {obj.pk}"


def audit_task_run(run, *, request=None, user=None, api_key=None, system: str = "") -> AuditEntry:
    """A background task someone queued: its run, name and parameters (ids and numbers)."""
    return audit_record("run", f"task run {run.pk} ({run.name})", request=request, user=user,
                        api_key=api_key, system=system,
                        detail={"task": run.name, "params": run.params})
