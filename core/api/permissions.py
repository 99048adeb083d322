"""Who may do what.

- An API key (``request.auth`` is an ApiKey): read scope may use safe
  methods (GET, HEAD, OPTIONS); write scope may use every method.
- A session (the admin's login): staff only, and Django's model permissions
  act as roles, exactly as in the admin (the same person may do the same
  things through both; tests/test_permission_matrix.py walks them). A view
  names its model in ``permission_model``; reading needs ``view_<model>``
  plus the view's ``read_permission`` if any (``EXPORT_TARGETING_LIST`` for
  a list of customers), writing needs the view's ``write_permission``
  (``change`` unless the view says otherwise: ``add`` to create, ``delete``
  for erasure, or a full name such as ``RUN_TASKS`` for queueing background
  work, which then also needs ``view_<model>``). The groups are in
  core/groups.py.
- Personal data (a customer's export and erasure): the view names its
  permission in ``personal_data_permission``; a key needs privacy scope,
  whatever the method (an export is a GET), and a user that permission.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.models import ApiKey

# Queueing background work (the admin's task actions need the same).
RUN_TASKS = "core.run_tasks"
# Taking customer ids out of the platform: targeting lists, follow-up plans.
EXPORT_TARGETING_LIST = "modelling.export_targetinglist"


def _full_name(model, name: str) -> str:
    """``"view"`` -> ``"app.view_model"``; a name with a dot is already full."""
    return name if "." in name else f"{model._meta.app_label}.{name}_{model._meta.model_name}"


def session_permissions(view, method: str) -> set[str]:
    """The permissions a staff session needs for ``method`` on ``view``."""
    model = view.permission_model
    if method in SAFE_METHODS:
        extra = getattr(view, "read_permission", None)
        return {_full_name(model, "view"), *([_full_name(model, extra)] if extra else [])}
    write = getattr(view, "write_permission", "change")
    if "." in write:
        return {_full_name(model, "view"), write}
    return {_full_name(model, write)}


class ApiAccess(BasePermission):
    message = "Your credentials do not allow this request."

    def has_permission(self, request, view) -> bool:
        personal = getattr(view, "personal_data_permission", None)
        if isinstance(request.auth, ApiKey):
            scope = request.auth.scope
            if personal:
                if scope == ApiKey.Scope.PRIVACY:
                    return True
                self.message = (f"This API key has {scope} scope; personal data requests need "
                                "privacy scope.")
                return False
            if request.method in SAFE_METHODS or scope in (ApiKey.Scope.WRITE,
                                                           ApiKey.Scope.PRIVACY):
                return True
            self.message = "This API key has read scope; the request needs write scope."
            return False
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not user.is_staff:
            self.message = "Only staff users may use the API with a session."
            return False
        model = getattr(view, "permission_model", None)
        if model is None:
            return user.is_superuser
        wanted = ({f"{model._meta.app_label}.{personal}"} if personal
                  else session_permissions(view, request.method))
        missing = sorted(p for p in wanted if not user.has_perm(p))
        if not missing:
            return True
        self.message = f"Your account lacks the permission {', '.join(missing)}."
        return False
