"""Models: the ST-GCN++ backbone (stgcnpp, graph, checkpoint import, demo pretraining) and the translators.

``hatl.models.stgcnpp.STGCNPP`` is the backbone; ``hatl.models.checkpoint.load_backbone(path)`` returns it
imported and adapted to the configured MediaPipe graph.
"""

from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

__all__ = ["STGCNPP", "STGCNPPConfig"]
