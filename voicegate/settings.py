"""Voicegate settings: one file, every value from the environment through voicegate.env's strict readers.

With nothing set, the service runs for development: SQLite and generated keys under VOICEGATE_DATA_DIR
(outside the repository), jobs on kombu's filesystem transport, e-mail to the console.
"""

from __future__ import annotations

from pathlib import Path

from voicegate.env import (
    env_bool,
    env_broker_url,
    env_database,
    env_float,
    env_int,
    env_key,
    env_key_list,
    env_list,
    env_optional_float,
    env_optional_patterns,
    env_path,
    env_secret,
    env_str,
    warn_about_development_keys,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("VOICEGATE_DATA_DIR", Path.home() / ".local" / "share" / "voicegate")
_DEV_SECRETS = DATA_DIR / "dev-secrets"

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY", dev_file=_DEV_SECRETS / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "governance",
    "synthesis",
    "detection",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "voicegate.urls"
WSGI_APPLICATION = "voicegate.wsgi.application"
ASGI_APPLICATION = "voicegate.asgi.application"

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

DATABASES = {"default": env_database("DATABASE_URL", DATA_DIR / "voicegate.sqlite3")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web server and worker share the file: wait for a lock rather than fail at once. WAL lets readers run beside
    # the one writer, and synchronous=NORMAL makes a commit an append to the log instead of an fsync (the file
    # stays consistent; a power cut may lose the last commits). PostgreSQL is the production database.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE",
                                       "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-voicegate.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous visitors get nothing

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_path("STATIC_ROOT", DATA_DIR / "static")
MEDIA_ROOT = env_path("MEDIA_ROOT", DATA_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Request bodies: audio uploads are bounded here and again by the audio intake limits.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("VOICEGATE_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = str(env_path("EMAIL_FILE_PATH", DATA_DIR / "mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "voicegate@localhost")

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env_str("CACHE_URL", "")}
        if env_str("CACHE_URL", "")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Voicegate keys -------------------------------------------------------------------------------
# Master key: wraps each owner's data key (envelope encryption). Retired master keys stay readable
# until `manage.py rotate_master_key` has re-wrapped every data key under the current one.
VOICEGATE_MASTER_KEY = env_key("VOICEGATE_MASTER_KEY", dev_file=_DEV_SECRETS / "master_key")
VOICEGATE_RETIRED_MASTER_KEYS = env_key_list("VOICEGATE_RETIRED_MASTER_KEYS")
# Audit HMAC key: separate from the master key so that rotating one never breaks the other.
VOICEGATE_AUDIT_KEY = env_key("VOICEGATE_AUDIT_KEY", dev_file=_DEV_SECRETS / "audit_key")
# API keys are stored as HMAC-SHA256 under this pepper: a stolen database alone cannot check guesses.
VOICEGATE_API_KEY_PEPPER = env_key("VOICEGATE_API_KEY_PEPPER", dev_file=_DEV_SECRETS / "api_key_pepper")
# Watermark key: derives the embedding pattern and the payload MAC. Retired keys stay readable by detection.
VOICEGATE_WATERMARK_KEY = env_key("VOICEGATE_WATERMARK_KEY", dev_file=_DEV_SECRETS / "watermark_key")
VOICEGATE_RETIRED_WATERMARK_KEYS = env_key_list("VOICEGATE_RETIRED_WATERMARK_KEYS")
warn_about_development_keys(_DEV_SECRETS)

# --- Governance rules -------------------------------------------------------------------------------
VOICEGATE_CONSENT_REMINDER_DAYS = env_int("VOICEGATE_CONSENT_REMINDER_DAYS", 14, minimum=1)
VOICEGATE_IDENTITY_VALID_DAYS = env_int("VOICEGATE_IDENTITY_VALID_DAYS", 365, minimum=1)
VOICEGATE_DEFAULT_RATE_LIMIT_PER_MINUTE = env_int("VOICEGATE_DEFAULT_RATE_LIMIT_PER_MINUTE", 60, minimum=1)
VOICEGATE_MAX_TEXT_CHARS = env_int("VOICEGATE_MAX_TEXT_CHARS", 2000, minimum=1)

# --- Abuse controls (governance/ratelimit.py, governance/abuse.py; docs/operations.md) -----------------
# Seconds of synthesized audio per key and UTC day, unless the key sets its own (ApiKey.audio_seconds_per_day).
VOICEGATE_DEFAULT_AUDIO_SECONDS_PER_DAY = env_int("VOICEGATE_DEFAULT_AUDIO_SECONDS_PER_DAY", 3600, minimum=1)
# A key's day is flagged when a measure exceeds FACTOR x its mean over the BASELINE_DAYS before (days since
# the key was created only) and reaches the minimum volume.
VOICEGATE_ANOMALY_FACTOR = env_float("VOICEGATE_ANOMALY_FACTOR", 5.0, minimum=1.0)
VOICEGATE_ANOMALY_BASELINE_DAYS = env_int("VOICEGATE_ANOMALY_BASELINE_DAYS", 14, minimum=1)
VOICEGATE_ANOMALY_MIN_REQUESTS = env_int("VOICEGATE_ANOMALY_MIN_REQUESTS", 200, minimum=1)
VOICEGATE_ANOMALY_MIN_AUDIO_SECONDS = env_int("VOICEGATE_ANOMALY_MIN_AUDIO_SECONDS", 900, minimum=1)
# JSON object of name -> regex (case-insensitive); unset means governance.abuse.DEFAULT_FRAUD_PATTERNS, "{}" none.
VOICEGATE_FRAUD_PATTERNS = env_optional_patterns("VOICEGATE_FRAUD_PATTERNS")
# Off: flags wait for an officer. On: a flag suspends its key at once (refused as key_suspended until reinstated).
VOICEGATE_SUSPEND_FLAGGED_KEYS = env_bool("VOICEGATE_SUSPEND_FLAGGED_KEYS", False)

# --- Voice enrollment and verification -----------------------------------------------------------
VOICEGATE_AUDIO_MAX_BYTES = env_int("VOICEGATE_AUDIO_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
VOICEGATE_AUDIO_MAX_SECONDS = env_float("VOICEGATE_AUDIO_MAX_SECONDS", 180.0, minimum=1.0)
# Thresholds: unset means the measured defaults kept beside the code (voicegate/audio/quality.py,
# embedding.VERIFY_THRESHOLD, statement.DEFAULT_*_THRESHOLD); docs/quality-gate.md,
# docs/speaker-verification.md and docs/consent-verification.md give the measurements behind them.
VOICEGATE_QUALITY_MIN_SPEECH_S = env_optional_float("VOICEGATE_QUALITY_MIN_SPEECH_S", minimum=0.0)
VOICEGATE_QUALITY_MIN_SNR_DB = env_optional_float("VOICEGATE_QUALITY_MIN_SNR_DB")
VOICEGATE_QUALITY_MAX_CLIPPING = env_optional_float("VOICEGATE_QUALITY_MAX_CLIPPING", minimum=0.0, maximum=1.0)
VOICEGATE_QUALITY_MIN_SPEAKER_SIMILARITY = env_optional_float("VOICEGATE_QUALITY_MIN_SPEAKER_SIMILARITY", minimum=-1.0, maximum=1.0)
VOICEGATE_SPEAKER_MATCH_THRESHOLD = env_optional_float("VOICEGATE_SPEAKER_MATCH_THRESHOLD", minimum=-1.0, maximum=1.0)
VOICEGATE_PROTECTED_VOICE_THRESHOLD = env_optional_float("VOICEGATE_PROTECTED_VOICE_THRESHOLD", minimum=-1.0, maximum=1.0)
VOICEGATE_STATEMENT_MAX_WER = env_optional_float("VOICEGATE_STATEMENT_MAX_WER", minimum=0.0, maximum=1.0)
VOICEGATE_CHALLENGE_MAX_WER = env_optional_float("VOICEGATE_CHALLENGE_MAX_WER", minimum=0.0, maximum=1.0)
VOICEGATE_CHALLENGE_TTL_SECONDS = env_int("VOICEGATE_CHALLENGE_TTL_SECONDS", 300, minimum=30)
# 0: delete raw sample audio as soon as it is embedded (data minimization); N: keep it, encrypted, N days.
VOICEGATE_SAMPLE_AUDIO_RETENTION_DAYS = env_int("VOICEGATE_SAMPLE_AUDIO_RETENTION_DAYS", 0)
VOICEGATE_MODEL_DIR = env_path("VOICEGATE_MODEL_DIR", DATA_DIR / "models")

# --- Synthesis ---------------------------------------------------------------------------------------
# Engines fitted at enrollment (in this order: the first is ready first) and offered to requests; "none" turns
# synthesis off (enrollment only). "fast": Piper + conversion; "quality": Kokoro + fitted style (slower to fit).
VOICEGATE_ENGINES = ([] if env_str("VOICEGATE_ENGINES", "fast,quality") == "none"
                     else env_list("VOICEGATE_ENGINES", ["fast", "quality"]))
VOICEGATE_DEFAULT_ENGINE = env_str("VOICEGATE_DEFAULT_ENGINE", "fast")
# Batch jobs (POST /api/v1/synthesis-jobs/) take texts up to this long; the worker speaks them in parts of at most
# VOICEGATE_MAX_TEXT_CHARS, each through the gate.
VOICEGATE_SYNTHESIS_JOB_MAX_TEXT_CHARS = env_int("VOICEGATE_SYNTHESIS_JOB_MAX_TEXT_CHARS", 20000, minimum=1)
# A running job renews its claim after every part; one silent for this long is taken for crashed and requeued.
VOICEGATE_SYNTHESIS_JOB_LEASE_SECONDS = env_int("VOICEGATE_SYNTHESIS_JOB_LEASE_SECONDS", 600, minimum=30)

# --- Jobs -------------------------------------------------------------------------------------------
_BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_broker_url("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem://")
    else {}
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "voicegate.broker:Transport"  # kombu's, writing each message atomically
    for _folder in ("queue", "processed", "control"):
        (_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True  # job state lives in our own models, which clients poll
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "expire-consents": {"task": "governance.tasks.expire_consents", "schedule": 60.0},
    "send-consent-reminders": {"task": "governance.tasks.send_consent_reminders", "schedule": 3600.0},
    "purge-retained-sample-audio": {"task": "governance.tasks.purge_retained_sample_audio", "schedule": 3600.0},
    "requeue-stalled-synthesis-jobs": {"task": "synthesis.tasks.requeue_stalled_synthesis_jobs", "schedule": 60.0},
}

# --- API --------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "voicegate.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "voicegate.api_errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Voicegate API",
    "DESCRIPTION": "Consent-gated voice cloning: governance, synthesis and detection.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
