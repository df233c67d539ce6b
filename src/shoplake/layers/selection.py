"""Which gold models a run builds: the ones `gold_models` names and every model they read."""

from __future__ import annotations

from shoplake.errors import ModelError
from shoplake.layers.gold import Model


def select_models(models: list[Model], names: list[str] | None) -> list[Model]:
    """The named models and every model they read, in run order (None: all of them); a name that is no
    model is a ModelError listing the known ones."""
    if names is None:
        return models
    by_name = {m.name: m for m in models}
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise ModelError(f"gold_models names no model {', '.join(unknown)}",
                         hint=f"the models are: {', '.join(sorted(by_name))}")
    wanted: set[str] = set()
    waiting = list(names)
    while waiting:
        name = waiting.pop()
        if name not in wanted:
            wanted.add(name)
            waiting.extend(by_name[name].depends_on)
    return [m for m in models if m.name in wanted]
