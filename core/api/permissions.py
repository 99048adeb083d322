"""Who may do what.

- An API key (``request.auth`` is an ApiKey): read scope may use safe
  methods (GET, HEAD, OPTIONS); write scope may use every method.
- A session (the admin's login): staff only, and Django's model permissions
  act as roles. A view names its model in ``permission_model``; reading
  needs ``view_<model>``, writing needs the view's ``write_permission``
  (``change`` unless the view says otherwise, e.g. ``delete`` for erasure).
  Give roles to people with groups in the admin ("CRM analysts": view only,
  "Campaign managers": view and change on campaigns and experiments, ...).
- Personal data (a customer's export and erasure): the view names its
  permission in ``personal_data_permission``; a key needs privacy scope,
  whatever the method (an export is a GET), and a user that permission.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.models import ApiKey


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
        if personal:
            perm = f"{model._meta.app_label}.{personal}"
        else:
            action = "view" if request.method in SAFE_METHODS else getattr(
                view, "write_permission", "change")
            perm = f"{model._meta.app_label}.{action}_{model._meta.model_name}"
        if user.has_perm(perm):
            return True
        self.message = f"Your account lacks the permission {perm}."
        return False
