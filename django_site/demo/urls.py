from __future__ import annotations

from django.urls import path

from demo import board, views

app_name = "demo"

urlpatterns = [
    path("", views.index, name="index"),
    path("board/", board.board, name="board"),
    path("board/htmx/", board.board_htmx, name="board-htmx"),
    path("board/presence", board.presence, name="presence"),
]
