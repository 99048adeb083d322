"""Settings, read from the environment (see .env.example for every variable).

Defaults give a laptop setup (SQLite, tasks run eagerly in process) in
production mode: DEBUG is off unless DEBUG=true (what `make run` sets), so a
server needs no flag. Production sets DJANGO_SECRET_KEY, DATABASE_URL
(PostgreSQL) and CELERY_BROKER_URL (Redis or RabbitMQ); README "Production".
"""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DEBUG is off (DEBUG=true "
                                   "for a laptop demo; README, Production)")
    # Only ever used with DEBUG on: a laptop demo, never a deployment.
    SECRET_KEY = "insecure-development-key-do-not-deploy"
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    # Django's own bar (check --deploy, security.W009).
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 characters (5 distinct) "
                               "with DEBUG off")

# Key of the pseudonyms (core.pseudonyms): customer ids in logs and after
# erasure, idempotency keys always. Keep it as long as the data it keyed.
PRIVACY_ID_KEY = env_str("PRIVACY_ID_KEY")
if not PRIVACY_ID_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("PRIVACY_ID_KEY must be set when DEBUG is off")
    PRIVACY_ID_KEY = "insecure-development-pseudonym-key"
elif not DEBUG and len(PRIVACY_ID_KEY) < 32:
    raise ImproperlyConfigured("PRIVACY_ID_KEY must be at least 32 characters with DEBUG off")
# Figures about fewer customers than this are suppressed (core.small_cells).
PRIVACY_MIN_CELL = env_int("PRIVACY_MIN_CELL", 20, minimum=1)
# > 0: segment sizes are shown as epsilon-differentially private counts instead.
PRIVACY_DP_EPSILON = env_float("PRIVACY_DP_EPSILON", 0.0, minimum=0.0)
# Events older than this many days are deleted daily; 0 keeps them forever.
EVENT_RETENTION_DAYS = env_int("EVENT_RETENTION_DAYS", 0, minimum=0)

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
    # Before anything reads the body: see core.api.body_limit.
    "core.api.body_limit.RequestBodyLimitMiddleware",
    # Static files (the admin's CSS and JavaScript, plotly) from STATIC_ROOT
    # under gunicorn: `manage.py collectstatic` fills it at each release.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.BrokerUnavailableMiddleware",
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
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
# Compressed copies are made by collectstatic; no manifest, so a page still
# renders where collectstatic has not run (tests, runserver).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
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
# The longest one of those statements may run (PostgreSQL units: "10min",
# "30s"; "0" = no limit): a query gone wrong ends with an error, not hours
# of a worker and gigabytes of memory.
ANALYTICS_STATEMENT_TIMEOUT = env_str("ANALYTICS_STATEMENT_TIMEOUT", "10min")
# Segment rules compile to one SQL condition: the most nodes, nesting and
# values of one in-list a rule may have (marketing.segment_rules).
SEGMENT_RULE_MAX_NODES = env_int("SEGMENT_RULE_MAX_NODES", 200, minimum=1)
SEGMENT_RULE_MAX_DEPTH = env_int("SEGMENT_RULE_MAX_DEPTH", 8, minimum=1)
SEGMENT_RULE_MAX_VALUES = env_int("SEGMENT_RULE_MAX_VALUES", 1000, minimum=1)

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
                  "modelling.tasks.response_model_train_task",
                  "modelling.tasks.behaviour_model_train_task",
                  "modelling.tasks.segmentation_run_task")
CELERY_TASK_ROUTES = {task: {"queue": queue} for task in TRAINING_TASKS
                      if (queue := env_str("CELERY_TRAINING_QUEUE"))}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Sending fails fast when the broker is down: a web request answers 503
# within about a second (core.task_runs.BrokerUnavailable) instead of
# hanging, and the run, already committed, is sent later by the reaper.
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0,
                                    "interval_step": 0.2, "interval_max": 0.2}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Redis answers in milliseconds; a reply slower than this is an outage
        # (above kombu's 1 s BRPOP poll, which the worker waits on).
        "socket_connect_timeout": 1.0,
        "socket_timeout": 1.5,
        # Longer than the longest task: an unacknowledged message (acks_late)
        # comes back only after this; lost workers are found sooner by leases.
        "visibility_timeout": env_int("CELERY_TASK_TIME_LIMIT", 3600, minimum=1) + 600,
    }
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 1.0
CELERY_REDIS_SOCKET_TIMEOUT = 10.0
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": {"timeout": 1.0}}

# Task delivery (core.task_runs, core.task_delivery): a running task holds a
# lease it renews every TASK_HEARTBEAT_SECONDS; the reaper (beat, every
# TASK_REAPER_SECONDS) starts over or fails runs whose lease expired and
# sends runs left queued.
TASK_LEASE_SECONDS = env_int("TASK_LEASE_SECONDS", 120, minimum=2)
TASK_HEARTBEAT_SECONDS = env_int("TASK_HEARTBEAT_SECONDS", max(1, TASK_LEASE_SECONDS // 4),
                                 minimum=1)
TASK_RUN_MAX_ATTEMPTS = env_int("TASK_RUN_MAX_ATTEMPTS", 5, minimum=1)
TASK_RETRY_BACKOFF_SECONDS = env_int("TASK_RETRY_BACKOFF_SECONDS", 2, minimum=0)
TASK_RETRY_BACKOFF_MAX_SECONDS = env_int("TASK_RETRY_BACKOFF_MAX_SECONDS", 60, minimum=0)
TASK_RUN_SEND_GRACE_SECONDS = env_int("TASK_RUN_SEND_GRACE_SECONDS", 60, minimum=0)
TASK_RUN_RESEND_SECONDS = env_int("TASK_RUN_RESEND_SECONDS", 900, minimum=1)
TASK_REAPER_SECONDS = env_int("TASK_REAPER_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Fixed jobs; beat's database scheduler adds them beside the per-campaign
# schedules managed in the admin. Behaviour snapshots: see
# marketing.behaviour_snapshots (scoring reads only a day of events after it).
SNAPSHOT_REFRESH_HOUR = env_int("SNAPSHOT_REFRESH_HOUR", 2, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "task-runs-reap": {
        "task": "jobs.tasks.task_runs_reap_task",
        "schedule": float(TASK_REAPER_SECONDS),
        # A tick the workers did not take in time is dropped: the next one comes soon.
        "options": {"expires": float(TASK_REAPER_SECONDS)},
    },
    "behaviour-snapshots-refresh": {
        "task": "modelling.tasks.behaviour_snapshots_refresh_task",
        "schedule": crontab(hour=SNAPSHOT_REFRESH_HOUR, minute=0),
    },
    # Does nothing while EVENT_RETENTION_DAYS is 0 (the default).
    "events-retention-purge": {
        "task": "marketing.tasks.events_retention_purge_task",
        "schedule": crontab(hour=3, minute=30),
    },
    # Customers a saved learned segment never saw join it by its nearest centre.
    "saved-clusters-extend": {
        "task": "modelling.tasks.saved_cluster_memberships_extend_task",
        "schedule": crontab(hour=SNAPSHOT_REFRESH_HOUR, minute=30),
    },
}

# --- Logging -------------------------------------------------------------
# Request lines name customers by CRM id in URLs (/customers/<id>/...):
# the filter puts the pseudonym there before any handler writes the line.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"customer_ids": {"()": "core.log_privacy.CustomerIdLogFilter"}},
    "formatters": {"django.server": {"()": "django.utils.log.ServerFormatter",
                                     "format": "[{server_time}] {message}", "style": "{"}},
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "filters": ["customer_ids"]},
                 # runserver's request lines (Django's own handler, plus the filter).
                 "django.server": {"class": "logging.StreamHandler", "formatter": "django.server",
                                   "filters": ["customer_ids"]}},
    # Django's default handlers for these (console when DEBUG, mail to ADMINS)
    # would print request paths unfiltered: ours replace them.
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False},
                "django.server": {"handlers": ["django.server"], "level": "INFO",
                                  "propagate": False}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- HTTPS (read only when DEBUG is off; README "Production") --------------
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe the health endpoint over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto (only when the
# proxy always sets it, or a client could claim HTTPS).
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Cache: API throttle counts and verified API keys ------------------------
# Redis when CACHE_URL (or REDIS_URL) is set: every gunicorn worker and host
# then shares one count per client and sees a revoked key at once. Otherwise
# each process keeps its own (one process: `make run`, the tests).
CACHE_URL = env_str("CACHE_URL") or env_str("REDIS_URL")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("CACHE_URL/REDIS_URL must be a redis://, rediss:// or unix:// URL")
CACHES = {"default": (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
     "KEY_PREFIX": "campaign"} if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"})}

# --- REST API (the kit in core.api; each app's endpoints in its api/) --------
INSTALLED_APPS += ["drf_spectacular_sidecar"]  # Swagger UI served locally, no CDN
API_BULK_MAX_ROWS = 10_000
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1024)
# Django's own limit is raised to the API's, and core.api.body_limit holds
# every other path (the admin) to FORM_MAX_BODY_BYTES, Django's default.
FORM_MAX_BODY_BYTES = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES, FORM_MAX_BODY_BYTES)
# How long a verified API key is cached. Revocation (api_key_deactivate) is
# immediate in every process sharing the cache; a key switched off another
# way works at most this long.
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 10, minimum=0)
# Backpressure (core.api.backpressure): background tasks one API key may have
# queued or running at once; one more is a 429 with this Retry-After.
API_MAX_ACTIVE_TASKS_PER_KEY = env_int("API_MAX_ACTIVE_TASKS_PER_KEY", 20, minimum=1)
API_TASKS_RETRY_AFTER_SECONDS = env_int("API_TASKS_RETRY_AFTER_SECONDS", 30, minimum=1)
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
        "write scope: everything but personal data; privacy scope: everything, including a "
        "customer's data export and erasure), or an admin session for staff users.\n\n"
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
