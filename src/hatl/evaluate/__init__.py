"""Evaluation and paper artefacts: decoding, scoring, significance, Tables 4-7, Figures 2-10.

Commands (see ``hatl.cli``): ``hatl decode`` (:mod:`.decode`), ``hatl score`` (:mod:`.score`),
``hatl table`` (:mod:`.tables`), ``hatl figure`` (:mod:`.figures`). Library pieces: :mod:`.lm_fusion`
(word-level KenLM shallow fusion), :mod:`.bootstrap` (paired bootstrap p-values), :mod:`.collapse` (distinct
outputs, constant-output floor) and :mod:`.paper_numbers` (the paper's reported rows). What training shares
with evaluation lives below both: the searches in :mod:`hatl.models.beam` and :mod:`hatl.models.ctc_decode`,
the metrics in :mod:`hatl.metrics`. Submodules are not imported here, so ``hatl score``
does not pay for torch.
"""
