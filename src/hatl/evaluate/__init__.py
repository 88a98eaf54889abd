"""Evaluation and paper artefacts: decoding, metrics, significance, Tables 4-7, Figures 2-10.

Commands (see ``hatl.cli``): ``hatl decode`` (:mod:`.decode`), ``hatl score`` (:mod:`.score`),
``hatl table`` (:mod:`.tables`), ``hatl figure`` (:mod:`.figures`). Library pieces: :mod:`.beam` (batched
beam search), :mod:`.lm_fusion` (word-level KenLM shallow fusion), :mod:`.ctc_decode` (CTC gloss decoding),
:mod:`.metrics` (BLEU-1..4, ROUGE-L, chrF, WER), :mod:`.bootstrap` (paired bootstrap p-values), :mod:`.collapse` (distinct outputs, constant-output
floor) and
:mod:`.paper_numbers` (the paper's reported rows). Submodules are not imported here, so ``hatl score``
does not pay for torch.
"""
