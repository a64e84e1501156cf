"""The second peer's Django project: django-eventstream with its Redis backend, served by daphne.

Set up as django-eventstream's README says (the `daphne` and `django_eventstream` apps, an ASGI
application, `include(django_eventstream.urls)` with the channel from the URL, `EVENTSTREAM_REDIS`
so every process hears `send_event`), run with the bench's own virtualenv (`bench/.venv`, from
`bench/requirements-peers.txt`), never the project's.
"""
