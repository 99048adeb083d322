"""REST API for CRM integrations (``/api/v1/``), plus the pieces every API view shares.

Authentication, permissions, throttling, the JSON parser, pagination and the
one error format live here; experiments.api reuses them. Views are thin:
validate the shape with a serializer, call a service, serialise the result.
"""
