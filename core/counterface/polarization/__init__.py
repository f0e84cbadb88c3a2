"""rho_T: how differently outlets use a politician's image with and without the attribute T.

For an article of politician p with pair (Z1, Z0) and outlets (y1, y2)::

    d = log[g(y1|Z1,X,p) / g(y2|Z1,X,p)] - log[g(y1|Z0,X,p) / g(y2|Z0,X,p)]
    rho_T(p, y1, y2) = mean of d over p's articles

g is the outlet model (kind ``outlet_model``, on features from an ``embedder``), cross-fitted so
that no article is scored by a model that saw it, or the researcher's own probabilities
(``--scores``). Modules: :mod:`.data` (joining the inputs), :mod:`.features` (embeddings, once per
image), :mod:`.crossfit` (folds and out-of-fold scores), :mod:`.estimate` (log-odds, aggregation,
bootstrap and permutation helpers), :mod:`.analysis` (the estimation), :mod:`.outputs` (the files),
:mod:`.runner` (everything in order), :mod:`.synthetic` (a planted study). See docs/polarization.md.
"""

from .analysis import Result, Settings, analyse
from .crossfit import heldout_metrics, make_folds
from .data import Study, build_study, read_pairs, read_scores
from .estimate import contributions, outlet_pairs
from .features import OutletFeatures, embed_files
from .runner import run

__all__ = ["OutletFeatures", "Result", "Settings", "Study", "analyse", "build_study", "contributions",
           "embed_files", "heldout_metrics", "make_folds", "make_study", "outlet_pairs", "read_pairs", "read_scores",
           "run"]


def __getattr__(name: str):
    if name == "make_study":  # imported lazily: `python3 -m counterface.polarization.synthetic` runs that module
        from .synthetic import make_study

        return make_study
    raise AttributeError(name)
