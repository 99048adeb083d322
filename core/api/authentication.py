"""``Authorization: Api-Key <prefix>.<secret>`` for CRM integrations.

Staff users of the admin authenticate with their session instead (DRF's
SessionAuthentication, CSRF enforced). See marketing.services.api_key_verify
for how keys are stored and checked.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core.api_keys import api_key_verify

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates a request as its API key; ``request.auth`` is the ApiKey.

    ``request.user`` is an AnonymousUser: an integration is not a person, and
    permissions look at the key's scope (core.api.permissions).
    """

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        keyword, _, raw = header.partition(b" ")
        if keyword.decode("latin-1").lower() != KEYWORD.lower():
            return None
        try:
            raw_key = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        key = api_key_verify(raw_key)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or inactive API key.")
        return AnonymousUser(), key

    def authenticate_header(self, request) -> str:
        # Makes an unauthenticated request a 401 (with WWW-Authenticate), not a 403.
        return KEYWORD


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "An integration's key, sent as `Authorization: Api-Key <prefix>.<secret>`. "
                "Create one with `manage.py create_api_key NAME --scope read|write`; "
                "read scope allows GET, write scope allows every method."
            ),
        }
