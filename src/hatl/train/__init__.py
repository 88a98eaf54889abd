"""Training: the HATL progressive-unfreezing controller, the classical / full baselines, data and resume.

``hatl.train.controller`` is torch-free (the schedule as a pure unit); ``hatl.train.recipe`` runs a whole
training (``hatl train``, :mod:`hatl.train.cli`). docs/training.md describes the schedule and the outputs.
"""
