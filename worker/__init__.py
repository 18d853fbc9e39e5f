"""Celery workers: admission, provider calls, webhook delivery, housekeeping."""
