"""Entity versions: `major.minor.patch`; every update bumps the patch."""

DEFAULT_VERSION = "0.0.1"


def bump(version: str) -> str:
    try:
        major, minor, patch = (int(part) for part in version.split("."))
    except ValueError:
        return DEFAULT_VERSION
    return f"{major}.{minor}.{patch + 1}"
