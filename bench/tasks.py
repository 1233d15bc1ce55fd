"""The bare django-q2 task the per-document overhead is measured against."""


def noop() -> None:
    return None
