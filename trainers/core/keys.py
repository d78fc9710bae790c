"""Every PRNG key of a run, derived from the config's seed by `fold_in` with a named tag.

One table, used by every command: `geodesics targets`, `train` and `demo` draw the
targets of one config from the same key, so they produce the same target set;
evaluation and validation seeds never coincide with the instances meta-training
draws. Tags are fixed integers (never `hash()` of a string, which varies between
Python processes).
"""

from __future__ import annotations

import types

import jax

TAGS = types.MappingProxyType(
    {
        "meta_train": 0x3E7A,  # meta-parameters, instances in flight, imitation batches
        "targets": 0x7A46E7,  # teacher trajectories and bead training of geodesic targets
        "validation": 0x7A11D,  # the held-out instances of the validation meta-loss
        "evaluation": 0x5EED_E7A1,  # tuning and held-out seeds of `meta-opt evaluate`
        "connect": 0xC0EC7,  # `geodesics connect`: the two models and their beads
        "sweep": 0x5EE9,  # `geodesics sweep`: pairs, training and beads
        "spectrum": 0x5BEC7,  # `geodesics spectrum`: trajectories, pairs, beads and Lanczos probes
    }
)


def derive(seed: int, tag: str) -> jax.Array:
    """The root key of one part of a run: `fold_in(PRNGKey(seed), TAGS[tag])`.

    Raises:
      KeyError: an unknown tag (the message lists the known ones).
    """
    if tag not in TAGS:
        raise KeyError(f"unknown key tag {tag!r}; known: {', '.join(TAGS)}")
    return jax.random.fold_in(jax.random.PRNGKey(seed), TAGS[tag])
