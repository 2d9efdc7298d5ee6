"""Prompt rules for image generation: living-artist styles, public figures, the opt-out registry.

Two text classifiers, registered by name:

* ``artist-style`` (:class:`ArtistStyleRule`) — a prompt asking for the style of a living artist
  (``intellectual_property`` / ``living_artist_style``); deceased artists and movements are allowed.
* ``public-figures`` (:class:`PublicFigureRule`) — a prompt naming a public figure who is a minor
  today, or a person who opted out (``privacy`` / ``minor_public_figure``, ``opted_out_person``).

Both read the operator's lists (packaged defaults under ``data/``, see ``CARD.md``) and the store's
opt-outs through one :class:`NameRegistry`, which the owner of the store refreshes::

    registry = NameRegistry(store.list_opt_outs())
    rules = [ArtistStyleRule(registry=registry), PublicFigureRule(registry=registry)]
    ...
    registry.refresh(store.list_opt_outs())  # when opt-outs change; a no-op if they did not
"""

from safestack.classify.rules._artists import Artist, ArtistList, ArtistStyleRule, load_artists
from safestack.classify.rules._names import NameIndex, NameMatch, fold, tokenize
from safestack.classify.rules._optouts import NameRegistry, OptOutLike, OptOutSnapshot
from safestack.classify.rules._people import (
    PublicFigure,
    PublicFigureList,
    PublicFigureRule,
    adult_from,
    load_figures,
)

__all__ = [
    "Artist",
    "ArtistList",
    "ArtistStyleRule",
    "NameIndex",
    "NameMatch",
    "NameRegistry",
    "OptOutLike",
    "OptOutSnapshot",
    "PublicFigure",
    "PublicFigureList",
    "PublicFigureRule",
    "adult_from",
    "fold",
    "load_artists",
    "load_figures",
    "tokenize",
]
