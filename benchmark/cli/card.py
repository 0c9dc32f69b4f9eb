"""`cxrbench card init`: start a leaderboard entry's card from a commented template."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import SUBMISSIONS, GeneratorConfig, console, one_line_errors, read_generator_config

card_app = typer.Typer(no_args_is_help=True, help="The generator card (generator.yaml) of a leaderboard entry.")


@card_app.command()
def init(
    name: Annotated[str, typer.Argument(help="The generator's name (its meta.name).")],
    out: Annotated[Path | None, typer.Option(
        help="Where to write the card (default: submissions/NAME/generator.yaml); never over an existing file.")]
        = None,
    generator_config: GeneratorConfig = None,
) -> None:
    """Write a commented generator.yaml with every field the card needs, prefilled from the generator's metadata
    (and, given the run's --generator-config, the pretraining pools it learnt from) when NAME is a known generator;
    fill in the fields marked required, then `cxrbench submit`."""
    from ..card_template import card_template, pretraining_tasks, write_new
    from ..errors import ConfigError, UnknownNameError
    from ..registry import generator_class
    from ..submission import CARD_FILE, NAME_PATTERN

    with one_line_errors():
        import re

        if not re.fullmatch(NAME_PATTERN, name):
            raise ConfigError(f"generator name {name!r}: a card's name is lower-case letters, digits, '_', '.' and "
                              f"'-' (at most 64), starting with a letter or digit")
        try:
            cls = generator_class(name)
        except UnknownNameError:
            cls = None
        options = read_generator_config(generator_config).get(name, {})
        text = card_template(name, cls.meta if cls else None, trainable=bool(cls and cls.trainable),
                             module=cls.__module__ if cls else None,
                             pretrained_on=pretraining_tasks(cls, options) if cls else ())
        path = out or SUBMISSIONS / name / CARD_FILE
        write_new(path, text)
    known = "" if cls else f" ({name} is not a generator this cxrbench knows: every field is left for you)"
    console.print(f"wrote {path}{known}; fill in the fields marked required, then `cxrbench submit`",
                  highlight=False, markup=False)
