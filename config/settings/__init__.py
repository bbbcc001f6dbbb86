"""Settings profiles: `base` holds every value and its embedded default; `dev`, `test` and
`production` change only what differs. Choose one with DJANGO_SETTINGS_MODULE."""
