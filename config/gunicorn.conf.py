"""gunicorn settings read by ``gunicorn config.wsgi`` from this folder (``-c config/gunicorn.conf.py``).

The access log goes through core.log_privacy's filter, so request lines
name customers by pseudonym, never by the CRM id in the URL.
"""

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"customer_ids": {"()": "core.log_privacy.CustomerIdLogFilter"}},
    "formatters": {"generic": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "filters": ["customer_ids"], "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "filters": ["customer_ids"], "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}
accesslog = "-"
