"""counterface reference plugin: attribute scorers (kind ``scorer``): ``smile``, from mouth landmarks.

Hook implementations only; the code is in :mod:`counterface_scorers.smile`. A scorer registered
under an attribute's name is that attribute's default scorer (:mod:`counterface.scoring`): a smile edit
gets its ``score_*`` columns from ``smile``.
"""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_scorers(register):
    from . import smile

    register("smile", smile.LandmarkSmileScorer,
             description="landmark smile score (mouth-corner lift + width, per inter-ocular distance)")
