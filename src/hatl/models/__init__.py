"""Models: the ST-GCN++ backbone (stgcnpp, graph, checkpoint import, demo pretraining), the translators,
the searches over them (beam, ctc_decode) and a trained run's ``best.pt`` (trained).

``hatl.models.stgcnpp.STGCNPP`` is the backbone; ``hatl.models.checkpoint.load_backbone(path)`` returns it
imported and adapted to the configured MediaPipe graph.
"""

from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

__all__ = ["STGCNPP", "STGCNPPConfig"]
