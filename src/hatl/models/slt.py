"""The models f(x) = t(b(x)) of the trained tasks (paper section 4; docs/architecture.md).

- ``sign2text``: keypoints -> ST-GCN++ backbone -> per-frame features -> projection to the translator width
  -> encoder -> text decoder. CTC weight 0 (the paper); L_enc / L_bb stay on with uniform frame labels from
  the gloss annotations where the data has them (``model.loss.sign2text_frame_targets``, docs/losses.md).
- ``sign2gloss``: the same front end and encoder; the encoder output feeds a per-frame gloss classifier
  trained with CTC (plus L_enc / L_bb); no text decoder. The recognition half of Sign2Gloss2Text.
- ``gloss2text``: gloss tokens -> embedding (optionally through the words they spell: ``gloss_word_embeddings``) -> encoder
  -> text decoder; no backbone. The translation half of
  Sign2Gloss2Text (``hatl decode --translator-run`` chains the two), and on its own the upper-bound row.
- ``sign2text_ctc``: the joint ablation: sign2text's network plus sign2gloss's CTC head, trained together
  (the text decoder attends to the continuous encoder output, never to recognised glosses).

Two frame-wise gloss classifiers exist for the sign tasks: one on the encoder output (its log-softmax is
the CTC distribution and L_enc's prediction) and one on the backbone features (L_bb). Frame axis after the
backbone: T' = ceil(ceil(T / 2) / 2) (two stride-2 stages), and a sample with n real frames keeps
ceil(ceil(n / 2) / 2) of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hatl.errors import InputError
from hatl.experiment import BLANK, CTC_TASKS, PAD, TRAINED_TASKS, TRANSLATORS, UNK
from hatl.models.adat import ADATEncoder
from hatl.models.losses import (
    IGNORE,
    LossConfig,
    ctc_loss,
    ctc_usable,
    frame_cross_entropy,
    frame_targets,
    symmetric_kl,
    text_cross_entropy,
)
from hatl.models.positional import SinusoidalPositions
from hatl.models.transformer import TextDecoder, TransformerEncoder, TranslatorConfig, lengths_to_mask, token_embedding

LOSS_TERMS = ("ctc", "ce", "enc", "bb")  # total = Σ weight_k · term_k, each term a mean over its own unit


@dataclass(frozen=True)
class ModelConfig:
    """The config's ``model`` section as typed values (defaults: the paper's Table 4 and docs/losses.md)."""

    transformer: TranslatorConfig = field(default_factory=TranslatorConfig)
    adat: TranslatorConfig = field(default_factory=TranslatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    max_frames: int = 1024
    max_text_length: int = 128

    @classmethod
    def from_dict(cls, section: Mapping[str, Any] | None) -> "ModelConfig":
        """Build from the ``model`` section (a dict as validated by the schema, or a partial one in tests)."""
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"unknown model keys {unknown}; known: {sorted(known)}")
        return cls(
            transformer=TranslatorConfig.from_dict(section.get("transformer")),
            adat=TranslatorConfig.from_dict(section.get("adat")),
            loss=LossConfig.from_dict(section.get("loss")),
            max_frames=int(section.get("max_frames", cls.max_frames)),
            max_text_length=int(section.get("max_text_length", cls.max_text_length)),
        )

    def translator(self, name: str) -> TranslatorConfig:
        if name not in TRANSLATORS:
            raise ValueError(f"unknown translator {name!r}; known: {TRANSLATORS}")
        return getattr(self, name)


def model_config(config: Mapping[str, Any]) -> ModelConfig:
    """The typed ``model`` section of a full (validated, effective) pipeline config."""
    return ModelConfig.from_dict(config.get("model"))


@dataclass
class Encoded:
    """Encoder output for decoding: memory (B, T, D), memory_mask (B, T) True on real positions,
    gloss_logprobs (B, T, G) log-softmax of the encoder's frame classifier (None for gloss2text)."""

    memory: torch.Tensor
    memory_mask: torch.Tensor
    gloss_logprobs: torch.Tensor | None = None

    def index_select(self, rows: torch.Tensor) -> "Encoded":
        """Rows in the given order (repeats allowed): beam search expands and reorders hypotheses with it."""
        rows = rows.to(self.memory.device)
        return Encoded(
            memory=self.memory.index_select(0, rows),
            memory_mask=self.memory_mask.index_select(0, rows),
            gloss_logprobs=None if self.gloss_logprobs is None else self.gloss_logprobs.index_select(0, rows),
        )

    def repeat_interleave(self, times: int) -> "Encoded":
        """Each row ``times`` times in a row (B*times rows): the start of a beam of width ``times``."""
        rows = torch.arange(self.memory.shape[0], device=self.memory.device).repeat_interleave(times)
        return self.index_select(rows)

    @property
    def lengths(self) -> torch.Tensor:
        return self.memory_mask.sum(1)


@dataclass
class SLTOutput:
    """What ``SLTModel.forward`` returns.

    text_logits (B, S, V_text), None for sign2gloss (no decoder); frame_mask (B, T') True on real encoder
    positions; for the sign tasks also gloss_logprobs (B, T', G) (log-softmax of enc_frame_logits),
    enc_frame_logits and bb_frame_logits (B, T', G).
    """

    text_logits: torch.Tensor | None
    frame_mask: torch.Tensor
    gloss_logprobs: torch.Tensor | None = None
    enc_frame_logits: torch.Tensor | None = None
    bb_frame_logits: torch.Tensor | None = None
    encoded: Encoded | None = None


def downsampled_lengths(lengths: torch.Tensor, stages: int = 2) -> torch.Tensor:
    """Real frames left after ``stages`` stride-2 stages with padding: ceil(n / 2) per stage."""
    for _ in range(stages):
        lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
    return lengths


def pool_backbone_output(out: torch.Tensor) -> torch.Tensor:
    """pyskl layout (N, M, C, T', V) -> per-frame features (N, T', C), averaged over persons and joints."""
    if out.dim() != 5:
        raise ValueError(f"backbone output must be (N, M, C, T, V), got shape {tuple(out.shape)}")
    return out.mean(dim=(1, 4)).transpose(1, 2)


def drop_glosses(gloss: torch.Tensor, rate: float) -> torch.Tensor:
    """Source word dropout for gloss2text: each real (non-PAD) gloss becomes UNK with probability ``rate``.

    UNK rather than removal keeps the sentence's length and positions, and teaches the translator what it
    meets at test time anyway: glosses it has never seen map to UNK. Draws from torch's seeded generator.
    """
    drop = (torch.rand(gloss.shape, device=gloss.device) < rate) & (gloss != PAD)
    return gloss.masked_fill(drop, UNK)


def _sample_id(batch: Mapping[str, Any], row: int) -> str:
    ids = batch.get("sample_ids")
    return str(ids[row]) if ids is not None and row < len(ids) else f"row {row}"


class SLTModel(nn.Module):
    """One translation model for one task (see module docstring); the API is docs/architecture.md's.

    backbone: an ST-GCN++-like module taking (N, M, T, V, C) and returning (N, M, C_out, T/4, V); may be
    None for the sign tasks only if every batch brings precomputed ``backbone_features`` (then pass
    ``backbone_channels``), and must be None for gloss2text. cfg: a ``ModelConfig`` or the config's
    ``model`` section.
    """

    def __init__(
        self,
        task: str,
        translator: str,
        backbone: nn.Module | None,
        gloss_vocab_size: int,
        text_vocab_size: int,
        cfg: ModelConfig | Mapping[str, Any] | None = None,
        backbone_channels: int | None = None,
        gloss_words: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if task not in TRAINED_TASKS:
            raise ValueError(f"unknown task {task!r} for a model; trained tasks: {TRAINED_TASKS}")
        self.cfg = cfg if isinstance(cfg, ModelConfig) else ModelConfig.from_dict(cfg)
        tcfg = self.cfg.translator(translator)
        self.task = task
        self.translator = translator
        self.hidden = tcfg.hidden
        if gloss_vocab_size <= BLANK and task != "sign2text":
            raise ValueError(f"gloss vocabulary of size {gloss_vocab_size} has no room past the special ids")
        if task == "gloss2text":
            if backbone is not None:
                raise ValueError("gloss2text reads gloss tokens and takes no backbone (pass backbone=None)")
            self.backbone = None
            self.gloss_embed = token_embedding(gloss_vocab_size, tcfg.hidden, PAD)
            self.gloss_dropout = tcfg.gloss_dropout
        else:
            channels = backbone_channels or getattr(backbone, "out_channels", None)
            if channels is None:
                raise ValueError("cannot tell the backbone's output channels: pass backbone_channels")
            self.backbone = backbone
            self.backbone_channels = int(channels)
            self.project = nn.Linear(self.backbone_channels, tcfg.hidden)
            self.gloss_head = nn.Linear(tcfg.hidden, gloss_vocab_size)
            self.backbone_head = nn.Linear(self.backbone_channels, gloss_vocab_size)
        self.positions = SinusoidalPositions(tcfg.hidden)
        self.input_dropout = nn.Dropout(tcfg.dropout)
        self.encoder = TransformerEncoder(tcfg) if translator == "transformer" else ADATEncoder(tcfg)
        # sign2gloss ends in glosses: no text decoder (and no decoder parameters in the optimizer)
        self.decoder = TextDecoder(tcfg, text_vocab_size, pad_id=PAD) if self.has_decoder else None
        # gloss id -> text id (None unless gloss_word_embeddings); a non-persistent buffer, rebuilt from model_args
        self.register_buffer("gloss_words", None, persistent=False)
        if task == "gloss2text" and tcfg.gloss_word_embeddings:
            self._share_word_embeddings(gloss_words, gloss_vocab_size, text_vocab_size)
        elif gloss_words is not None:
            raise ValueError("gloss_words is for gloss2text with gloss_word_embeddings on")

    def _share_word_embeddings(self, gloss_words: Sequence[int] | None, gloss_vocab_size: int, text_vocab_size: int) -> None:
        """A gloss that spells a target word (``hatl.vocab.gloss_word_ids``; PAD when none) enters the encoder as that
        word's decoder embedding plus its own embedding, which starts at zero and learns what the gloss adds.

        Why: 7k training sentences give most glosses few examples (PHOENIX14T: median 10 for the glosses that spell a
        word, 2 for the others); a gloss such as REGEN then starts from
        what the decoder learns about "regen" in every sentence that writes it (with ``tie_embeddings`` the one
        matrix reads glosses, reads words and writes words).
        """
        if gloss_words is None:
            raise ValueError("gloss_word_embeddings needs the gloss -> word id map (hatl.vocab.gloss_word_ids)")
        words = torch.as_tensor(list(gloss_words), dtype=torch.long)
        if words.shape != (gloss_vocab_size,):
            raise ValueError(f"gloss_words has {words.numel()} entries for a gloss vocabulary of {gloss_vocab_size}")
        if bool(((words < 0) | (words >= text_vocab_size)).any()):
            raise ValueError(f"gloss_words holds ids outside the text vocabulary (size {text_vocab_size})")
        self.gloss_words = words
        with torch.no_grad():
            self.gloss_embed.weight[words != PAD] = 0.0

    def gloss_input(self, gloss: torch.Tensor) -> torch.Tensor:
        """(B, U) gloss ids -> (B, U, D) encoder input embeddings (before the sqrt(D) scaling)."""
        x = self.gloss_embed(gloss)
        if self.gloss_words is not None:
            assert self.decoder is not None
            x = x + self.decoder.embed(self.gloss_words[gloss])
        return x

    @property
    def has_decoder(self) -> bool:
        return self.task != "sign2gloss"

    # ----- parameters -------------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by role, for per-group learning rates (Table 4: encoder 5e-5, decoder 1e-4; the
        backbone's per-layer rates come from ``backbone.layers()``). The input projection / embedding and
        the two frame classifiers belong to the encoder group."""
        backbone = set(id(p) for p in self.backbone.parameters()) if self.backbone is not None else set()
        decoder = set(id(p) for p in self.decoder.parameters()) if self.decoder is not None else set()
        groups: dict[str, list[nn.Parameter]] = {"backbone": [], "encoder": [], "decoder": []}
        for param in self.parameters():
            key = "backbone" if id(param) in backbone else "decoder" if id(param) in decoder else "encoder"
            groups[key].append(param)
        return groups

    # ----- the sign front end -----------------------------------------------------------------------
    def backbone_features(
        self, keypoints: torch.Tensor, frame_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """keypoints (B, T, V, C), frame_mask (B, T) -> per-frame features (B, T', C_bb) and their mask (B, T').

        Padded frames are zeroed first so their content cannot reach real frames through the temporal
        convolutions. A fully frozen backbone runs without autograd (saves its activations' memory);
        training may also cache this output and pass it as ``batch['backbone_features']``.
        """
        if self.backbone is None:
            raise ValueError("this model has no backbone: batches must carry 'backbone_features'")
        x = keypoints * frame_mask[:, :, None, None].to(keypoints.dtype)
        x = x.unsqueeze(1)  # (N, M=1, T, V, C): pyskl's layout, one signer
        trainable = any(p.requires_grad for p in self.backbone.parameters())
        frames = frame_mask.sum(1)
        with torch.set_grad_enabled(trainable and torch.is_grad_enabled()):
            if self.backbone.training or bool((frames == frames.max()).all()):
                feats = pool_backbone_output(self.backbone(x))
            else:
                feats = self._unpadded_features(x, frames)
        lengths = downsampled_lengths(frames)
        return feats, lengths_to_mask(lengths.clamp(max=feats.shape[1]), feats.shape[1])

    def _unpadded_features(self, x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Backbone features of a padded batch, each sample computed on its own frames only (eval mode).

        Padding is not neutral inside ST-GCN++: the input batch norm turns zeroed frames into constants that
        the temporal convolutions (and the max-pool branch) carry into the real frames near a clip's end.
        Training caches frozen features per sample without padding (hatl.train.feature_cache), so a padded batch at
        evaluation or decoding time would see other features than the model was trained on (measured on the
        demo: dev BLEU-4 13.5 with batches of 16 vs 25.0 alone). Samples of equal length run together.
        """
        t_out = int(downsampled_lengths(frames.max().reshape(1))[0])
        feats: torch.Tensor | None = None
        for n in torch.unique(frames).tolist():
            rows = (frames == n).nonzero().flatten()
            part = pool_backbone_output(self.backbone(x[rows, :, : int(n)]))
            if feats is None:
                feats = part.new_zeros((x.shape[0], t_out, part.shape[2]))
            feats[rows, : part.shape[1]] = part
        assert feats is not None
        return feats

    def _check_batch(self, batch: Mapping[str, Any]) -> None:
        """Refuse samples the model cannot represent, naming them (the data stage should filter or crop)."""
        if self.task == "gloss2text":
            for row, n in enumerate(batch["gloss_lengths"].tolist()):
                if n == 0:
                    raise InputError(None, _sample_id(batch, row), "gloss2text needs glosses, this sample has none")
        elif "backbone_features" not in batch:
            lengths = batch["frame_mask"].sum(1).tolist()
            for row, n in enumerate(lengths):
                if n == 0:
                    raise InputError(None, _sample_id(batch, row), "sample has no frames")
                if n > self.cfg.max_frames:
                    raise InputError(
                        None, _sample_id(batch, row), f"{n} frames exceed model.max_frames={self.cfg.max_frames}"
                    )
        if "text_in" in batch and batch["text_in"].shape[1] > self.cfg.max_text_length:
            lengths = (batch["text_in"] != PAD).sum(1)
            row = int(lengths.argmax())
            raise InputError(
                None, _sample_id(batch, row),
                f"text of {int(lengths[row])} tokens (with BOS) exceeds model.max_text_length={self.cfg.max_text_length}",
            )

    # ----- encoder -----------------------------------------------------------------------------------
    def _encode(self, batch: Mapping[str, Any]) -> tuple[Encoded, torch.Tensor | None, torch.Tensor | None]:
        """Encoded, plus (for the sign tasks) the backbone features and the encoder frame logits."""
        self._check_batch(batch)
        if self.task == "gloss2text":
            gloss = batch["gloss"]
            mask = lengths_to_mask(batch["gloss_lengths"].to(gloss.device), gloss.shape[1])
            if self.training and self.gloss_dropout > 0:
                gloss = drop_glosses(gloss, self.gloss_dropout)
            x = self.gloss_input(gloss) * math.sqrt(self.hidden)
            memory = self.encoder(self.input_dropout(self.positions(x)), mask)
            return Encoded(memory, mask), None, None
        if "backbone_features" in batch:
            feats, mask = batch["backbone_features"], batch["backbone_mask"].bool()
        else:
            feats, mask = self.backbone_features(batch["keypoints"], batch["frame_mask"].bool())
        if not bool(mask.any(1).all()):
            row = int((~mask.any(1)).nonzero()[0, 0])
            raise InputError(None, _sample_id(batch, row), "sample has no frames after the backbone")
        x = self.project(feats)
        memory = self.encoder(self.input_dropout(self.positions(x)), mask)
        enc_logits = self.gloss_head(memory)
        encoded = Encoded(memory, mask, F.log_softmax(enc_logits, dim=-1))
        return encoded, feats, enc_logits

    def encode(self, batch: Mapping[str, Any]) -> Encoded:
        return self._encode(batch)[0]

    def next_token_logprobs(self, encoded: Encoded, prefix: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B', V) of the token after ``prefix`` (B', S) (BOS first) for each encoded row."""
        if self.decoder is None:
            raise ValueError(f"task {self.task} has no text decoder: decode its glosses with CTC")
        logits = self.decoder(prefix, encoded.memory, encoded.memory_mask)
        return F.log_softmax(logits[:, -1], dim=-1)

    def forward(self, batch: Mapping[str, Any]) -> SLTOutput:
        encoded, feats, enc_logits = self._encode(batch)
        text_logits = (self.decoder(batch["text_in"], encoded.memory, encoded.memory_mask)
                       if self.decoder is not None else None)
        if self.task == "gloss2text":
            return SLTOutput(text_logits=text_logits, frame_mask=encoded.memory_mask, encoded=encoded)
        return SLTOutput(
            text_logits=text_logits,
            frame_mask=encoded.memory_mask,
            gloss_logprobs=encoded.gloss_logprobs,
            enc_frame_logits=enc_logits,
            bb_frame_logits=self.backbone_head(feats),
            encoded=encoded,
        )

    # ----- losses ------------------------------------------------------------------------------------
    def frame_target_mode(self) -> str | None:
        """How L_enc / L_bb labels are made for this task, or None when the task has no frame losses."""
        if self.task == "gloss2text":
            return None
        if self.task in CTC_TASKS:
            return self.cfg.loss.frame_targets
        mode = self.cfg.loss.sign2text_frame_targets
        return None if mode == "none" else mode

    def uses_rdrop(self) -> bool:
        """Whether a training step pairs every sample with itself (``paired_for_rdrop``): R-Drop is on and the
        task has a text decoder for it to act on."""
        return self.has_decoder and self.cfg.loss.rdrop > 0

    def loss_weights(self) -> dict[str, float]:
        """w_k of total = Σ w_k · term_k; 0 for the terms this task does not use (the paper: w_ctc = 0 for Sign2Text;
        sign2gloss has no text decoder, so w_ce = 0)."""
        lcfg = self.cfg.loss
        frames = 1.0 if self.frame_target_mode() is not None else 0.0
        w_ctc = lcfg.w_ctc if self.task in CTC_TASKS else 0.0
        w_ce = lcfg.w_ce if self.has_decoder else 0.0
        return {"ctc": float(w_ctc), "ce": float(w_ce), "enc": frames * float(lcfg.w_enc), "bb": frames * float(lcfg.w_bb)}

    def losses(self, batch: Mapping[str, Any], out: SLTOutput) -> dict[str, torch.Tensor]:
        """total = w_ctc*ctc + w_ce*ce + w_enc*enc + w_bb*bb; terms a task does not use are 0 with weight 0.

        Also returns counts (0-dim int64). ``n_ctc``, ``n_ce``, ``n_enc``, ``n_bb``: what each term averages
        over in this batch (usable CTC rows, text tokens, labelled frames twice), so a multi-process step can
        turn per-rank means into the global batch's mean. ``skipped_no_gloss`` (rows without glosses: no CTC,
        no frame labels) and ``skipped_too_short`` (rows with fewer encoder frames than CTC needs for their
        glosses), over the rows a gloss term would supervise, so that nothing is dropped silently.
        """
        lcfg = self.cfg.loss
        none = torch.zeros((), dtype=torch.long)
        if out.text_logits is not None:
            ce = text_cross_entropy(out.text_logits, batch["text_out"], PAD, lcfg.label_smoothing)
            n_ce = (batch["text_out"] != PAD).sum()
            if batch.get(RDROP_PAIRS):  # rows i and B+i are one sample under two dropout masks
                half = out.text_logits.shape[0] // 2
                ce = ce + lcfg.rdrop * symmetric_kl(out.text_logits[:half], out.text_logits[half:],
                                                    batch["text_out"][:half], PAD)
        else:  # sign2gloss: no text target
            assert out.gloss_logprobs is not None
            ce, n_ce = out.gloss_logprobs.new_zeros(()), none
        zero = ce.new_zeros(())
        result = {"ctc": zero, "ce": ce, "enc": zero, "bb": zero,
                  "n_ctc": none, "n_ce": n_ce, "n_enc": none, "n_bb": none,
                  "skipped_no_gloss": none, "skipped_too_short": none}
        uses_ctc = self.task in CTC_TASKS  # the paper: w_ctc = 0 for Sign2Text
        mode = self.frame_target_mode()
        if uses_ctc or mode is not None:
            assert out.gloss_logprobs is not None and out.enc_frame_logits is not None
            assert out.bb_frame_logits is not None
            frame_lengths = out.frame_mask.sum(1)
            gloss, gloss_lengths = _gloss_targets(batch, frame_lengths)
            has_gloss = gloss_lengths > 0
            feasible = ctc_usable(frame_lengths, gloss_lengths, gloss)
            result["skipped_no_gloss"] = (~has_gloss).sum().cpu()
            if uses_ctc or mode == "viterbi":
                result["skipped_too_short"] = (has_gloss & ~feasible).sum().cpu()
            if uses_ctc:
                result["ctc"] = ctc_loss(out.gloss_logprobs, frame_lengths, gloss, gloss_lengths, BLANK, feasible)
                result["n_ctc"] = feasible.sum()
            if mode is not None:
                usable = feasible if mode == "viterbi" else has_gloss & (frame_lengths > 0)
                labels = frame_targets(mode, out.gloss_logprobs, frame_lengths, gloss, gloss_lengths, BLANK,
                                       usable, lcfg.supervise_blank_frames)
                result["enc"] = frame_cross_entropy(out.enc_frame_logits, labels)
                result["bb"] = frame_cross_entropy(out.bb_frame_logits, labels)
                result["n_enc"] = result["n_bb"] = (labels != IGNORE).sum()
        if batch.get(RDROP_PAIRS):  # count each sample once, not once per dropout pass
            for key in ("skipped_no_gloss", "skipped_too_short"):
                result[key] = result[key] // 2
        w = self.loss_weights()
        result["total"] = w["ctc"] * result["ctc"] + w["ce"] * ce + (w["enc"] * result["enc"] + w["bb"] * result["bb"])
        return result


RDROP_PAIRS = "rdrop_pairs"  # batch flag: the second half of every tensor repeats the first (R-Drop)


def paired_for_rdrop(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The batch with every row twice (rows B..2B-1 repeat rows 0..B-1), so that one forward pass draws two
    dropout masks per sample; ``losses`` then adds ``model.loss.rdrop`` x their symmetric KL to the text CE.
    One doubled pass instead of two calls keeps DDP's single forward per step."""
    doubled: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            doubled[key] = torch.cat([value, value], dim=0)
        elif isinstance(value, list):
            doubled[key] = value + value
        else:
            raise TypeError(f"paired_for_rdrop: batch entry {key!r} is a {type(value).__name__}, not a tensor or list")
    doubled[RDROP_PAIRS] = True
    return doubled


def _gloss_targets(batch: Mapping[str, Any], frame_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, U) glosses and (B,) lengths; a batch without a ``gloss`` entry (no annotation) reads as all-empty."""
    device = frame_lengths.device
    if batch.get("gloss") is None:
        size = frame_lengths.shape[0]
        return torch.zeros(size, 0, dtype=torch.long, device=device), torch.zeros(size, dtype=torch.long, device=device)
    return batch["gloss"].to(device), batch["gloss_lengths"].to(device)
