"""Notices rendered from jinja2 templates on disk, dated with email.utils."""

from __future__ import annotations

import email.utils
import os

from jinja2 import Environment, FileSystemLoader

templates = Environment(loader=FileSystemLoader(os.path.join(os.path.dirname(__file__),
                                                             "templates")))
greeting = templates.get_template("welcome.txt").render(shop="notices")
sent: list[str] = []


def notify(user: str, product: dict) -> str:
    # order.txt is first read here, at runtime: from the build's copy of the app's files.
    text = templates.get_template("order.txt").render(
        user=user, product=product, date=email.utils.formatdate())
    sent.append(text)
    return text
