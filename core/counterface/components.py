"""The component contracts: abstract base classes whose docstrings are the contracts.

Each is the contract of one kind declared in :mod:`counterface.kinds`. Plugins subclass these and
register a factory (usually the class) under a name through the kind's hook (:mod:`counterface.hookspecs`). A factory is called with the component's parameters as keyword
arguments (from presets, ``--set kind.param=value`` or a TOML config), so constructors must accept
only keyword arguments with defaults and must not download anything: weights are fetched lazily
through :mod:`counterface.weights` on first use.

Every component has ``describe()``: the JSON-serialisable parameters recorded in output sidecars.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from .types import AlignedFace, Pivot

class Component(ABC):
    """Common base. ``name`` is set by the registry to the name the component was created under
    (:func:`counterface.create`); the kinds themselves are declared in :mod:`counterface.kinds`."""

    name: str = ""

    def describe(self) -> dict[str, Any]:
        """Parameters that define this component's output, for provenance sidecars.

        Default: public, JSON-friendly attributes. Override for anything richer.
        """
        out: dict[str, Any] = {}
        for k, v in vars(self).items():
            if k.startswith("_"):
                continue
            if isinstance(v, (str, int, float, bool, type(None))):
                out[k] = v
            elif isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float, bool)) for x in v):
                out[k] = list(v)
        return out


class Aligner(Component):
    """Finds faces and warps each into the canonical crop (step 1).

    ``align(image, size)``: ``image`` is (H, W, 3) uint8 RGB. Returns a list of
    :class:`~counterface.types.AlignedFace`, **largest face first**, each with a crop of
    ``size`` x ``size`` pixels (the aligner's default size when ``None``) and the exact 2x3
    photo -> crop matrix. Returns an empty list when no face is found (the pipeline turns that into
    :class:`~counterface.errors.NoFaceError`). Must not modify ``image``.
    """

    @abstractmethod
    def align(self, image: "np.ndarray", size: int | None = None) -> list["AlignedFace"]: ...


class Generator(Component):
    """A StyleGAN-family generator (steps 3, 4, 6).

    Attributes: ``num_ws`` (W+ rows), ``w_dim``, ``resolution`` (output side), ``family`` (a string
    naming the latent space, e.g. ``'stylegan2-ffhq-1024'``; directions and inverters must match it).

    ``mapping(z)``: (N, w_dim) z -> (N, w_dim) w.
    ``synthesize(ws)``: (N, num_ws, w_dim) -> (N, 3, R, R) float32, nominally in [-1, 1]; uses stored
    noise (deterministic). Gradients flow when the caller enables them (the tuner does).
    ``w_avg``: (w_dim,) mean latent.
    ``module``: the ``torch.nn.Module`` whose ``named_parameters()`` a tuner may change.
    ``load_tensors(tensors)``: a context manager that temporarily replaces the named parameters
    with a pivot's tuned tensors (on any device: they are copied to each parameter's device and
    dtype) and restores the originals on exit.

    Devices: ``mapping``/``synthesize`` accept latents on any device and return tensors on the
    generator's device (the device of ``module``'s parameters); ``w_avg`` lives there too.
    """

    num_ws: int
    w_dim: int
    resolution: int
    family: str

    @abstractmethod
    def mapping(self, z: "torch.Tensor") -> "torch.Tensor": ...

    @abstractmethod
    def synthesize(self, ws: "torch.Tensor") -> "torch.Tensor": ...

    @property
    @abstractmethod
    def w_avg(self) -> "torch.Tensor": ...

    @property
    @abstractmethod
    def module(self) -> "torch.nn.Module": ...

    def load_tensors(self, tensors: dict[str, "torch.Tensor"]):
        """Context manager: use ``tensors`` (name -> value) in place of the module's parameters."""
        import contextlib

        import torch

        @contextlib.contextmanager
        def _ctx():
            params = dict(self.module.named_parameters())
            unknown = sorted(set(tensors) - set(params))
            if unknown:
                from .errors import ConfigError

                raise ConfigError(f"pivot has tensors this generator lacks: {', '.join(unknown[:5])}")
            saved = {k: params[k].detach().clone() for k in tensors}
            try:
                with torch.no_grad():
                    for k, v in tensors.items():
                        params[k].copy_(v.to(params[k].device, params[k].dtype))
                yield self
            finally:
                with torch.no_grad():
                    for k, v in saved.items():
                        params[k].copy_(v)

        return _ctx()

    def synthesize_tuned(self, ws: "torch.Tensor", tensors: "dict[str, torch.Tensor] | None" = None) -> "torch.Tensor":
        """W+ (B, num_ws, w_dim) rendered by B differently tuned copies of this generator: ``tensors``
        maps parameter names to per-sample values (B, *shape), sample i using ``tensors[name][i]``
        (None or empty: the module's own parameters). Differentiable in ``ws`` and ``tensors``: batched
        tuning (``--tune-batch``) builds on it. This default renders one sample at a time through
        :func:`torch.func.functional_call`; a generator with a batched path overrides it."""
        import torch

        if not tensors:
            return self.synthesize(ws)
        gen = self

        class _Call(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = gen.module

            def forward(self, w):
                return gen.synthesize(w)

        call = _Call()
        return torch.cat([torch.func.functional_call(call, {f"net.{n}": t[i] for n, t in tensors.items()},
                                                     (ws[i:i + 1],)) for i in range(ws.shape[0])])


class Inverter(Component):
    """Encodes aligned faces into W+ (step 2).

    ``invert(faces, generator)``: ``faces`` (N, 3, S, S) float32 in [-1, 1], any S (the inverter
    resizes to its own input size). Returns (N, num_ws, w_dim) float32 on CPU. ``family`` names the
    latent space it encodes into and must equal the generator's.
    """

    family: str = ""

    @abstractmethod
    def invert(self, faces: "torch.Tensor", generator: Generator | None = None) -> "torch.Tensor": ...


class Tuner(Component):
    """Refines the latent and tunes the generator around it (steps 3 and 4).

    ``tune(generator, w_init, target, region_mask=None, identity=None, progress=None)``:
    ``w_init`` (num_ws, w_dim) from the inverter; ``target`` (1, 3, R, R) in [-1, 1], the aligned
    face at the generator's resolution; ``region_mask`` (1, 1, R, R) in [0, 1] or None, the edited
    attribute's region (:meth:`counterface.AlignedFace.region` of the direction's ``region``); ``identity``
    an :class:`IdentityEncoder` or None. Returns a :class:`~counterface.types.Pivot` holding only the
    tensors it changed. The generator passed in must be left exactly as it was on return.
    Reproducible: same inputs and ``seed`` give the same pivot.

    Devices: the inputs may be on any device (the pipeline passes CPU tensors); the tuner works on
    the generator's device and returns the pivot's latent and tensors on the CPU.
    """

    @abstractmethod
    def tune(
        self,
        generator: Generator,
        w_init: "torch.Tensor",
        target: "torch.Tensor",
        region_mask: "torch.Tensor | None" = None,
        identity: "IdentityEncoder | None" = None,
        progress: Callable[[dict[str, float]], None] | None = None,
    ) -> "Pivot": ...

    def tune_many(self, generator: Generator, w_inits: list, targets: list, region_masks: list | None = None,
                  identity: "IdentityEncoder | None" = None,
                  progress: Callable[[dict[str, float]], None] | None = None) -> "list[Pivot]":
        """Tune several faces (``--tune-batch``): one pivot per face, each equal (within float
        tolerance) to ``tune`` on that face alone with the same seed. This default tunes them one by
        one; a tuner that can batch overrides it."""
        masks = list(region_masks) if region_masks is not None else [None] * len(targets)
        return [self.tune(generator, w, t, region_mask=m, identity=identity, progress=progress)
                for w, t, m in zip(w_inits, targets, masks)]


class AttributeDirection(Component):
    """A direction in a generator's latent space that turns one attribute on (step 5).

    ``apply(w, alpha, layers=None)``: ``w`` (..., num_ws, w_dim); returns a new tensor with
    ``alpha * v`` added to the W+ rows in ``layers`` (0-based, inclusive list of ints; ``None`` =
    ``default_layers``; rows outside are returned bit-identical). ``attribute`` names what it edits
    (``'smile'``), ``family`` the latent space it belongs to; applying it to a latent of another
    family raises :class:`~counterface.errors.ConfigError`. The result is on ``w``'s device and dtype.

    ``region``: where the attribute lives on the aligned face, for the tuner's region loss and the
    metrics: a :class:`counterface.types.Region`, a name (``'mouth'``, ``'eyes'``, ``'face'``),
    landmark indices or a builder ``face -> mask``; ``None`` = the aligner's own region if any, else
    the whole face.

    ``scorer``: the registered scorer that measures the attribute in the evaluation's ``score_*``
    columns (``'none'``: not scored); ``None`` = the attribute's default (:mod:`counterface.scoring`).
    """

    attribute: str = ""
    family: str = ""
    default_layers: Sequence[int] | None = None
    region: Any = None
    scorer: str | None = None

    @abstractmethod
    def apply(self, w: "torch.Tensor", alpha: float, layers: Sequence[int] | None = None) -> "torch.Tensor": ...


class Blender(Component):
    """Pastes an edited crop back into the photo (step 7).

    ``mask(shape, face)``: (H, W) float32 in [0, 1], the blend weight m in photo coordinates.
    ``blend(image, edited_crop, face)``: returns ``(1 - m) * image + m * warp(edited_crop, M^-1)``
    with the input's shape and dtype; pixels where m == 0 are bit-identical to the input. Must not
    modify ``image``.
    """

    @abstractmethod
    def mask(self, shape: tuple[int, int], face: "AlignedFace") -> "np.ndarray": ...

    @abstractmethod
    def blend(self, image: "np.ndarray", edited_crop: "np.ndarray", face: "AlignedFace") -> "np.ndarray": ...


class IdentityEncoder(Component):
    """Face-recognition embeddings of aligned faces (identity loss and metrics).

    ``embed(faces)``: (N, 3, S, S) float32 in [-1, 1], FFHQ-aligned at any S, on any device; returns
    (N, D) unit vectors on the encoder's device. Differentiable with respect to ``faces`` when
    gradients are enabled.

    Optional attributes: ``match_threshold``, the cosine similarity from which two faces count as
    the same person (the default of ``--match-threshold`` when the encoder is the ``--face match``
    matcher; without it the user must give one); ``differentiable = False`` for an encoder that can
    measure and match but not serve as the tuner's identity loss (``dlib``).
    """

    @abstractmethod
    def embed(self, faces: "torch.Tensor") -> "torch.Tensor": ...


class Operator(Component):
    """A counterfactual operator: pi_1 (turn the attribute on) or pi_0 (turn it off), both of this
    one kind, chosen per role with ``--pi1 NAME`` / ``--pi0 NAME`` (config sections ``pi1``/``pi0``).

    An operator acts on the pivot latent. For each edited attribute, the pipeline knows its boundary
    (unit ``normal`` per W+ row, ``intercept`` or ``None``) and the signed distance
    ``d_l = normal_l . w_l + intercept_l`` of every edited row ``l`` of the pivot latent ``w``.

    ``step(distance, *, alpha, boundary, index=0, rows=0)``: returns a (rows,) float64 tensor, the change of
    the signed distance to make on each edited row (the latent row then moves by ``step_l`` along
    its unit normal, ``w_l + step_l * normal_l``, or by the smallest move with that effect when
    other attributes are edited or kept on the same row). ``distance`` is the (rows,) float64
    tensor of current signed distances, or ``None`` when the boundary has no intercept; ``alpha`` the
    strength (``--alpha``); ``boundary`` the :class:`counterface.boundary.Boundary` (for its
    ``on_distance``/``off_distance``); ``index`` the attribute's position among several
    ``--direction`` options; ``rows`` the number of edited rows. Must be pure (same inputs, same output). Operators that need the signed
    distance (targets such as ``on``) set ``needs_intercept = True``; the pipeline then refuses a
    direction without an intercept with one :class:`~counterface.errors.ConfigError`.

    ``returns_photo = True`` marks the one exception, ``original``: the output is the photo itself,
    not a render, and ``step`` is not called.

    ``uses_alpha = False`` says the step ignores ``alpha`` (targets, the reconstruction): a sweep or
    ``--alpha auto`` with such operators alone is refused. ``renders_pivot = True`` says the output
    is the pivot's own render (no move), which the metrics then use as the reconstruction.
    """

    needs_intercept: bool = False
    returns_photo: bool = False
    uses_alpha: bool = True
    renders_pivot: bool = False

    @abstractmethod
    def step(self, distance: "torch.Tensor | None", *, alpha: float, boundary: Any, index: int = 0,
             rows: int = 0) -> "torch.Tensor": ...


class Embedder(Component):
    """Image features for the outlet model of ``counterface polarization`` (kind ``embedder``).

    ``embed(images)``: a sequence of (H, W, 3) uint8 RGB arrays of any sizes; returns an (N, D)
    float32 numpy array, one row per image, in order, D fixed for the component. Deterministic and
    row-wise: an image's row does not depend on the other images of the call (the caller embeds each
    image file once and caches the row). Must not modify the images. Weights are fetched through
    :mod:`counterface.weights` on first use, never in the constructor.
    """

    @abstractmethod
    def embed(self, images: Sequence["np.ndarray"]) -> "np.ndarray": ...


class OutletModel(Component):
    """g(y | Z, X, p): which outlet y publishes an article, given its image Z, its context X and the
    politician p (kind ``outlet_model``), for ``counterface polarization``.

    ``fit(features, outlets, classes, seed=0)``: ``features`` a
    :class:`counterface.polarization.OutletFeatures` of N articles (``embedding`` (N, D) float32,
    ``politician`` (N,) str, ``covariates`` (N, C) float64, already encoded: categorical columns
    one-hot, numeric ones as given); ``outlets`` the N outlet labels (str); ``classes`` every outlet,
    in the order of the output columns. Returns a **new** fitted object and leaves the component as
    it was, so one component serves every cross-fitting fold and bootstrap replicate. Same inputs and
    ``seed`` give the same fit.

    The fitted object's ``predict_proba(features)`` returns (M, len(classes)) float64 probabilities
    in ``classes`` order; an outlet absent from the training rows gets NaN (the other columns sum
    to 1). rho_T is specific to each politician, so the image's effect on g must be able to differ by
    politician (image x politician interactions, or one model per politician).
    """

    @abstractmethod
    def fit(self, features: Any, outlets: Sequence[str], classes: Sequence[str], seed: int = 0) -> Any: ...


class Scorer(Component):
    """How much of an attribute a face shows (kind ``scorer``): the labeller of
    ``counterface directions calibrate`` (and of any check that wants a number per image).

    ``score(images)``: a sequence (or an (N, H, W, 3) array) of (H, W, 3) uint8 RGB images, each an
    **aligned face crop** (FFHQ alignment, any size, as the generator synthesizes it; a scorer that
    needs to find the face itself may also accept photos, and says so). Returns an (N,) float64
    numpy array, one value per image in order, **higher = more of the attribute**, NaN where it
    cannot score an image (no face found). ``attribute`` names the attribute (``'smile'``); the scale
    is the scorer's own (only the order matters to a boundary fit). Deterministic; must not modify the
    images; weights are fetched on first use, never in the constructor.
    """

    attribute: str = ""

    @abstractmethod
    def score(self, images: Sequence["np.ndarray"]) -> "np.ndarray": ...
