"""The one progress-bar helper: every long loop of the project shows the same kind of bar."""

from __future__ import annotations


def progress_bar(
    total: int | None,
    description: str,
    *,
    unit: str = "it",
    enabled: bool = True,
    initial: int = 0,
    unit_scale: bool = False,
):
    """A tqdm bar on stderr (a no-op object when `enabled` is False, e.g. `--no-progress`).

    Args:
      total: the count at completion (None: unknown).
      description: the label in front of the bar.
      unit: what one step counts ("step", "pair", "B", ...).
      enabled: False hides the bar; it still accepts `update` and `set_postfix`.
      initial: the count already done (a resumed run).
      unit_scale: show SI prefixes (bytes).

    Returns:
      A context manager with `update(n)`, `set_postfix(...)`, `set_postfix_str(...)`.
    """
    from tqdm.auto import tqdm  # imported on use: loading configs stays light

    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        initial=initial,
        disable=not enabled,
        unit_scale=unit_scale,
        dynamic_ncols=True,
    )
