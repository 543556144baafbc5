"""Methods this package adds to fourdfy-bench through the `fourdfy.methods` entry-point group.

A trainable method is data: dotted `TrainConfig` keys and values (`fourdfy generate --set` takes the same
keys), checked against the config schema when fourdfy-bench loads the entry point. A method you only have
videos of is registered with `trainable=False`; its videos come in with `fourdfy import-videos`.
"""

from baselines import Method

# 4D-fy with the video SDS term weighted 0.3 instead of the paper's 0.1: does a stronger video prior add motion?
STRONG_VIDEO = Method(
    "strong_video",
    "4D-fy with the video SDS loss weighted 0.3 instead of 0.1 (example plug-in)",
    overrides={"weights.sds_video": 0.3},
    label="w/ video SDS x3",  # its name in the tables (default: strong_video)
)


def videos_only_methods() -> list[Method]:
    """An entry point may also name a function returning one Method or a list of them."""
    return [Method("videos_only_example", "a baseline compared through its released videos (example plug-in)",
                   trainable=False)]
