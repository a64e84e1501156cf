"""The publish form: field rules come from django_sse_push.validation so they match the publisher."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from django_sse_push.exceptions import PublishError
from django_sse_push.validation import validate_channel, validate_event_type


class PublishForm(forms.Form):
    channel = forms.CharField(max_length=128, initial="public.demo")
    event = forms.CharField(
        label="Event type",
        required=False,
        max_length=64,
        help_text="Empty for the default type (message).",
    )
    data = forms.CharField(
        label="Data (JSON)",
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        initial='{"text": "hello"}',
    )

    def clean_channel(self) -> str:
        try:
            return validate_channel(self.cleaned_data["channel"])
        except PublishError as exc:
            raise ValidationError(str(exc)) from exc

    def clean_event(self) -> str:
        try:
            return validate_event_type(self.cleaned_data["event"])
        except PublishError as exc:
            raise ValidationError(str(exc)) from exc

    def clean_data(self) -> Any:
        try:
            return json.loads(self.cleaned_data["data"])
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc}") from exc
