"""The chapters' questions: each key, the question as its notebook states it, and the function answering it.

Each chapter ends with questions whose answers come from its own data; the notebook prints
``chapter.answer("<chapter>-<n>")`` in a hidden cell under each. :data:`QUESTIONS` maps every key to
(the question as the notebook states it, the function answering it from a :class:`ncutils.chapter.Chapter`).
The functions are in :mod:`ncutils.chapter.answers_paper` (the paper's chapters) and
:mod:`ncutils.chapter.answers_related` (the related results); each reads ``chapter.every_seed`` (every seed's
run; a value "mean over the seeds" is the mean of the per-seed values) and raises :class:`NotComputed` when a
run it reads is not stored, which ``Chapter.answer`` shows as "not computed: ...". Unless a question says
otherwise, CDNV is ``cdnv_sum`` on the training split with flattened features (the view of the chapters'
figures).
"""
from __future__ import annotations

from collections.abc import Callable

from ..studies import DEPTH_LEVEL, DEPTH_NOISE
from .answering import NotComputed
from .answers_paper import (
                            adaptation,
                            back_and_forth,
                            best_source,
                            clean_depth_gain,
                            clean_last_third,
                            clean_resnet_vs_swin,
                            corruption_cost,
                            corruption_shift,
                            first_memorization_layer,
                            hardest_target,
                            mean_compression,
                            noise_cost,
                            noise_fits,
                            ratio_dip,
                            rises,
                            sensitivity,
                            vgg_decay,
                            vit_terminal,
)
from .answers_related import (
                            cdnv_gap_growth,
                            last_cdnv_gap,
                            nc1_fall_with_training,
                            nc4_zero_layer,
                            ncc_train_test,
                            shallow_share,
)

__all__ = ["QUESTIONS", "NotComputed"]

QUESTIONS: dict[str, tuple[str, Callable]] = {
    "clean-1": ("Which ResNet's CDNV falls most over its last third of blocks, in the training split?",
                clean_last_third),
    "clean-2": ("In each family, how much test accuracy does the deepest model gain over the shallowest?",
                clean_depth_gain),
    "clean-3": ("At the last block, whose CDNV is lower, the shallowest ResNet's or the shallowest Swin "
                "Transformer's, and by how many decades?", clean_resnet_vs_swin),
    "label_noise-1": ("How many label-noise runs fit their noisy labels?", noise_fits),
    "label_noise-2": (f"Under {DEPTH_NOISE} labels, which block is each model's first memorization layer "
                      "(memorization ratio above 1)?", first_memorization_layer),
    "label_noise-3": ("Which label noise costs ResNet18 the most test accuracy against its clean run?", noise_cost),
    "corruption-1": (f"Under Gaussian noise at level {DEPTH_LEVEL}, at which layer is each model's memorization "
                     "ratio lowest, and what is it at the last layer?", ratio_dip),
    "corruption-2": (f"Which model loses the most test accuracy on clean test images when it trains on Gaussian "
                     f"noise at level {DEPTH_LEVEL} instead of clean images?", corruption_cost),
    "corruption-3": ("By how many decades does each level of Gaussian noise raise ResNet18's CDNV curve (mean "
                     "log10 CDNV over its layers)?", corruption_shift),
    "domain-1": ("Which source domain's model gives the best last-layer probe accuracy on the other domains?",
                 best_source),
    "domain-2": ("Which target domain is hardest for the last layer's probes, and how far above chance are they "
                 "there?", hardest_target),
    "domain-3": ("Without adaptation, how accurate are the source models' own classifiers on the other domains, "
                 "compared with the last layer's probes?", adaptation),
    "vgg_vit-1": ("Which VGG's CDNV decays fastest per layer, and how close to geometric is each decay?", vgg_decay),
    "vgg_vit-2": ("What training accuracy does each ViT reach: is it in the terminal phase?", vit_terminal),
    "vgg_vit-3": ("Which model has the lowest CDNV on average over its layers, and which the highest?",
                  mean_compression),
    "nc1_vs_cdnv-1": ("In the training split with flattened features, at how many steps from one layer to the next "
                      "does each model's NC1 rise, and its CDNV?", rises),
    "nc1_vs_cdnv-2": ("Which model's NC1 curve travels furthest beyond its net change (excess variation), and how "
                      "far does its CDNV curve travel?", back_and_forth),
    "nc1_vs_cdnv-3": ("Over the models, which ranks the test accuracy more closely: the last-layer CDNV or the "
                      "last-layer NC2?", sensitivity),
    "small_nets-1": ("With ReLU on CIFAR-10, by how many decades does each network's NC1 fall from its first to its "
                     "last layer after training, and at initialisation?", nc1_fall_with_training),
    "small_nets-2": ("After training with ReLU, at which layer does each network's NC4 first fall below 0.01, on "
                     "Fashion-MNIST and on CIFAR-10?", nc4_zero_layer),
    "small_nets-3": ("For each activation, what share of NC1's fall from the first to the last layer comes by the "
                     "middle layer, on average over the trained networks?", shallow_share),
    "train_vs_test-1": ("At the last layer, by how many decades is each model's CDNV higher on the test split than "
                        "on the training split?", last_cdnv_gap),
    "train_vs_test-2": ("In which model does the CDNV gap between the splits grow most from the first third of the "
                        "layers to the last third, and does it grow in every model?", cdnv_gap_growth),
    "train_vs_test-3": ("At the last layer, how accurate is the nearest-class-centre classifier on each split, "
                        "against the network's own test accuracy?", ncc_train_test),
}
