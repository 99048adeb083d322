"""Settings of the benchmark server (benchmarks/api.py): the project's, plus bare views."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.api_urls"
