#!/bin/sh
# Prepare the database and static files, then run the command (uvicorn by default) as PID 1.
set -eu

if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
    # A key made once per deployment and kept beside the database beats a default shared by all.
    key_file="$(dirname "${DJANGO_DATABASE_PATH:?set DJANGO_DATABASE_PATH}")/secret_key"
    if [ ! -s "$key_file" ]; then
        (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(50))' > "$key_file")
        echo "docker-entrypoint: DJANGO_SECRET_KEY unset; generated $key_file" >&2
    fi
    DJANGO_SECRET_KEY=$(cat "$key_file")
    export DJANGO_SECRET_KEY
fi

# DJANGO_PREPARE=false: another container (the site's) migrates and collects; the relay's does not.
if [ "${DJANGO_PREPARE:-true}" = true ]; then
    python manage.py migrate --noinput
    # Known passwords: for demos only, never on a site others can reach.
    if [ "${DJANGO_DEMO_USERS:-false}" = true ]; then
        python manage.py create_demo_users
    fi
    python manage.py collectstatic --noinput
fi
exec "$@"
