"""Settings, read from the environment (see .env.example for every variable).

Defaults give a laptop setup: SQLite, tasks run eagerly in process, DEBUG on.
Production sets DEBUG=false, DJANGO_SECRET_KEY, DATABASE_URL (PostgreSQL) and
CELERY_BROKER_URL (Redis or RabbitMQ).
"""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DEBUG is off")
    # Only ever used with DEBUG on: a laptop demo, never a deployment.
    SECRET_KEY = "insecure-development-key-do-not-deploy"
elif not DEBUG and len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 32 characters with DEBUG off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    # The apps, lowest first: each imports only those above it in this list
    # (tests/test_dependencies.py holds them to it).
    "core",
    "marketing",
    "experiments",
    "modelling",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", "sqlite:///var/db.sqlite3"), base_dir=BASE_DIR
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A fresh clone has no var/ yet; SQLite will not create the folder itself.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# plotly.js comes from the pinned plotly package (core.staticfiles), never a CDN
# and never a copy in git: static/plotly/plotly.min.js.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "core.staticfiles.PlotlyFinder",
]

# PostgreSQL work_mem for the big per-experiment aggregates (analysis, scoring
# features): enough to hash a million assignments in memory instead of on disk.
ANALYTICS_WORK_MEM = env_str("ANALYTICS_WORK_MEM", "256MB")

# Behaviour snapshots (marketing.behaviour_snapshots): events received up to
# this long before a snapshot's build began are recomputed from events when
# scoring, because an ingest transaction still open then was not visible to
# the build. Longer than the longest import or API request.
SNAPSHOT_LATE_MARGIN_SECONDS = env_int("SNAPSHOT_LATE_MARGIN_SECONDS", 900, minimum=0)

# Where trained model artifacts (state dict + JSON config) are written.
MODEL_ARTIFACT_DIR = Path(env_str("MODEL_ARTIFACT_DIR", str(BASE_DIR / "var" / "models")))

# --- Celery --------------------------------------------------------------
# No broker configured means a single laptop: run every task eagerly in the
# calling process so nothing else has to be started.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
# Scoring fans out with a chord, which needs a result backend: with a Redis
# broker the same Redis serves; with RabbitMQ set CELERY_RESULT_BACKEND to a
# Redis URL. Task status for people lives in the database (TaskRun) either way.
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else None)
# `make run`: a worker beside the dev server with no service to install.
# kombu's filesystem transport passes messages as files in one folder (the
# web process writes, the worker reads and moves them to processed/), and
# Celery's file result backend keeps chord results on disk; the scoring chord
# completes through chord_unlock polling, which needs no native chord support.
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_FOLDER = Path(env_str("CELERY_BROKER_FOLDER", str(BASE_DIR / "var" / "broker")))
    for _sub in ("queue", "processed"):
        (BROKER_FOLDER / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        "store_processed": False,
    }
    if not CELERY_RESULT_BACKEND:
        _results = BASE_DIR / "var" / "celery-results"
        CELERY_RESULT_BACKEND = f"file://{_results}"
if (CELERY_RESULT_BACKEND or "").startswith("file://"):
    # Celery's file backend does not create its folder.
    Path(CELERY_RESULT_BACKEND.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_EXPIRES = env_int("CELERY_RESULT_EXPIRES", 86_400, minimum=60)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600, minimum=1)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Queues per kind of work (README, "Running at scale"): with CELERY_TRAINING_QUEUE
# set, model training goes to that queue and the workers started with
# `-Q <that queue>`; analysis, scoring (its chunks) and the rest stay on the
# default queue. Unset (make run, one worker): everything on the default queue.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
TRAINING_TASKS = ("modelling.tasks.uplift_model_train_task",
                  "modelling.tasks.response_model_train_task")
CELERY_TASK_ROUTES = {task: {"queue": queue} for task in TRAINING_TASKS
                      if (queue := env_str("CELERY_TRAINING_QUEUE"))}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Fixed jobs; beat's database scheduler adds them beside the per-campaign
# schedules managed in the admin. Behaviour snapshots: see
# marketing.behaviour_snapshots (scoring reads only a day of events after it).
SNAPSHOT_REFRESH_HOUR = env_int("SNAPSHOT_REFRESH_HOUR", 2, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "behaviour-snapshots-refresh": {
        "task": "modelling.tasks.behaviour_snapshots_refresh_task",
        "schedule": crontab(hour=SNAPSHOT_REFRESH_HOUR, minute=0),
    },
}

# --- Logging -------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)

# --- REST API (the kit in core.api; each app's endpoints in its api/) --------
INSTALLED_APPS += ["drf_spectacular_sidecar"]  # Swagger UI served locally, no CDN
API_BULK_MAX_ROWS = 10_000
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1024)
# How long a verified API key is cached: a deactivated key works at most this long.
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 10, minimum=0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.ApiAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.ClientRateThrottle"],
    # Per API key (or staff user, or address). "bulk" covers requests of up to
    # API_BULK_MAX_ROWS rows, so it is per request, not per row.
    "DEFAULT_THROTTLE_RATES": {
        "read": env_str("API_THROTTLE_READ", "6000/min"),
        "write": env_str("API_THROTTLE_WRITE", "3000/min"),
        "bulk": env_str("API_THROTTLE_BULK", "120/min"),
    },
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Campaign experimentation API",
    "DESCRIPTION": (
        "REST API for CRM integrations: customers, events, segments, campaigns, experiments, "
        "assignment, exposures, conversions and background tasks.\n\n"
        "**Authentication**: `Authorization: Api-Key <prefix>.<secret>` (read scope: GET; "
        "write scope: everything), or an admin session for staff users.\n\n"
        "**Errors** always have the shape `{\"error\": {\"code\", \"message\", \"fields\", "
        "\"rows\"}}`: `fields` maps a JSON path of the request to messages, `rows` lists the "
        "rejected items of a bulk request by index. A bulk request is applied fully or not "
        "at all.\n\n"
        "**Lists** are cursor-paginated (`next`/`previous` links; `page_size` up to 1000)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "EventKindEnum": "marketing.models.Event.Kind",
        "TaskStatusEnum": "core.models.TaskRun.Status",
        "ExperimentStatusEnum": "experiments.models.Experiment.Status",
        "CampaignStatusEnum": "marketing.models.Campaign.Status",
    },
}
