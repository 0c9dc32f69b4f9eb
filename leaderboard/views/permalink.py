"""Permalinks: the page, its filters and its chosen generators live in the URL's query parameters.

Every widget that shapes a view is made through this module under a key that is also its query
parameter. On a session's first run a widget takes its value from the URL when that value is one of
its choices; any other value, and any parameter no widget of the view takes, leaves the default and
is named in a notice. The URL is anyone's input, so what it says reaches the page as plain text only
(`st.text`): Markdown, even escaped, would still turn a bare URL into a link. After every run the URL
is rewritten from the widgets shown, so copying it reproduces the view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from cxrbench.leaderboard.views.text import quoted

_UNTAKEN = "_permalink_untaken"
"""The query parameters the session opened with that no widget has taken yet (emptied after the first run)."""
_SHOWN = "_permalink_shown"
"""This run's widgets: key -> the values its query parameter gets."""
_NOTICES = "_permalink_notices"
MAX_NOTICES = 10
"""A URL with thousands of bad parameters gets this many lines and a count of the rest."""
_NONE = ""
"""The query value of an empty multiselect (no value at all would read as 'the default')."""


def begin() -> None:
    """At the top of every run; the session's first run keeps the URL's parameters for the widgets to take."""
    if _UNTAKEN not in st.session_state:
        st.session_state[_UNTAKEN] = {key: st.query_params.get_all(key) for key in st.query_params}
    st.session_state[_SHOWN] = {}
    st.session_state[_NOTICES] = []


def finish(notices: Any) -> None:
    """After the page: name the parameters no widget took, write the URL of this view, show the notices in
    `notices` (a container at the top of the page): a warning, then the problems as plain text."""
    for key in st.session_state[_UNTAKEN]:
        st.session_state[_NOTICES].append(f"parameter {quoted(key)}: not one this view has; ignored")
    st.session_state[_UNTAKEN] = {}
    st.query_params.from_dict(st.session_state[_SHOWN])
    found = st.session_state[_NOTICES]
    if found:
        notices.warning(f"This link has {len(found)} problem(s); the defaults are shown instead of what it asks for.")
        more = [f"... and {len(found) - MAX_NOTICES} more"] if len(found) > MAX_NOTICES else []
        notices.text("\n".join(found[:MAX_NOTICES] + more))


def _seed(key: str, default: object, parse: Callable[[list[str]], object]) -> None:
    """Give the widget `key` its first value: the URL's when `parse` accepts it, else `default` (with a notice)."""
    values = st.session_state[_UNTAKEN].pop(key, None)
    if key in st.session_state:  # the widget already has a value from this session
        return
    value = default
    if values is not None:
        try:
            value = parse(values)
        except ValueError as problem:
            st.session_state[_NOTICES].append(f"{key}: {problem}")
    st.session_state[key] = value


def _one_of(options: Sequence[str]) -> Callable[[list[str]], str]:
    def parse(values: list[str]) -> str:
        if len(values) != 1:
            raise ValueError(f"{len(values)} values where one is expected")
        if values[0] not in options:
            raise ValueError(f"{quoted(values[0])} is not one of {_choices(options)}")
        return values[0]
    return parse


def _some_of(options: Sequence[str]) -> Callable[[list[str]], list[str]]:
    def parse(values: list[str]) -> list[str]:
        if values == [_NONE]:
            return []
        unknown = [value for value in values if value not in options]
        if unknown:
            raise ValueError(f"{quoted(unknown[0])} is not one of {_choices(options)}")
        return list(dict.fromkeys(values))
    return parse


def _flag(values: list[str]) -> bool:
    if values not in (["true"], ["false"]):
        raise ValueError(f"{quoted(values[0] if len(values) == 1 else values)} where true or false is expected")
    return values == ["true"]


def _choices(options: Sequence[str]) -> str:
    shown = ", ".join(quoted(option) for option in options[:8])
    return f"({shown}{', …' if len(options) > 8 else ''})"


def choice(widget: Callable[..., Any], label: str, options: Sequence[str], key: str, default: str | None = None,
           **kwargs: Any) -> Any:
    """A single choice (`st.selectbox`, `st.radio`, in the sidebar or the page) linked to the query parameter `key`;
    `default`, else the first option, when the URL names none."""
    options = list(options)
    _seed(key, default if default is not None else next(iter(options), None), _one_of(options))
    value = widget(label, options, key=key, **kwargs)
    if value is not None:
        st.session_state[_SHOWN][key] = value
    return value


def choices(widget: Callable[..., Any], label: str, options: Sequence[str], key: str, default: Sequence[str],
            **kwargs: Any) -> list[str]:
    """A multiselect linked to the query parameter `key` (one value per choice)."""
    options = list(options)
    _seed(key, list(default), _some_of(options))
    value = widget(label, options, key=key, **kwargs)
    st.session_state[_SHOWN][key] = list(value) or [_NONE]
    return value


def flag(widget: Callable[..., Any], label: str, key: str, default: bool = False) -> bool:
    """A checkbox linked to the query parameter `key` (true or false)."""
    _seed(key, default, _flag)
    value = widget(label, key=key)
    st.session_state[_SHOWN][key] = "true" if value else "false"
    return value
