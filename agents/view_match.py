"""View match: for each element of what is in view, how well it matches what the core remembers.

A shuffled recall (the pads of visual match, the candidates of ``ShuffledCueRecall``, the objects at
MiniGrid-Memory's hallway end) asks which element of the observation equals a remembered one. With the
torso alone that comparison must be learned separately at every position, because the torso's weights
are position-specific. Here each element (a MiniGrid image cell, a multi-discrete slot) is embedded
with weights *shared* over positions, a query is read from the core's output, and their dot product
is one score per element: "this cell shows what I remember". The heads read the scores beside the
core's output, so "walk to the cell that matches" is linear in them.

With ``policy_query`` each element gets a second score from a second query, which the RL losses
train and the recognition loss (``agents.recognition``) does not: that loss trains the first query
to say "seen again", and where that is not what the task asks the two pull one query apart. In
MiniGrid-Memory both objects at the hallway's end can come into view on the way there, leave it and
come back, so at the junction both can be "seen again" and a recognition-trained score need not tell
the matching one (how often depends on the policy; docs/AGENTS.md, MiniGrid section).

Observation kinds with elements: ``minigrid_image`` (each cell, its object, colour and state embedded
and summed), ``multi_discrete`` (each slot, one table shared by the slots), and a ``discrete`` key
that names a shared ``vocabulary`` (one element). Keys naming the same vocabulary share one table
and one range of value ids, so the cue of ``ShuffledCueRecall`` (``symbol``) and its candidates are
embedded alike and the recognition loss sees the cue again among the candidates. Other kinds, and
discrete keys without a vocabulary (MiniGrid's ``direction``), have none.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

EMBED_SIZE = 16


class ViewMatch(nn.Module):
    """``(obs {key: [N, ...]}, y [N, core_size]) -> scores [N, num_scores]``.

    ``num_elements`` sums the elements of every observation key with any (49 for a 7x7 image, K for a
    K-slot multi-discrete, 1 for a discrete key that names a vocabulary), in the sorted order of the
    keys; zero if there are none (the module is then a no-op the caller can skip). The first
    ``num_elements`` scores are those of ``queries`` (what the recognition loss trains); with
    ``policy_query`` the next ``num_elements`` are those of ``policy_queries``, so ``num_scores`` is
    twice ``num_elements``."""

    def __init__(self, description: dict[str, dict], core_size: int, policy_query: bool = False):
        super().__init__()
        self.keys: list[str] = []
        self.first_element: dict[str, int] = {}  # an observation key -> the index of its first score
        self.embeds = nn.ModuleDict()
        self.queries = nn.ModuleDict()
        self.policy_queries = nn.ModuleDict()  # empty without policy_query
        self.num_elements = 0
        self._images: set[str] = set()  # names of the minigrid_image keys (cells have 3 channels)
        self._tables: dict[str, str] = {}  # a non-image key's name -> the name of its embedding table
        self.vocab_size = 0  # distinct element values over all keys (``element_values``)
        shared_sizes: dict[str, int] = {}  # a shared vocabulary -> its largest key's number of values
        for key, desc in description.items():
            if desc.get("vocabulary") is not None:
                if desc["kind"] not in ("discrete", "multi_discrete"):
                    raise ValueError(f"observation {key!r} names vocabulary {desc['vocabulary']!r}, but "
                                     f"only discrete and multi_discrete keys can, not {desc['kind']}")
                shared_sizes[desc["vocabulary"]] = max(shared_sizes.get(desc["vocabulary"], 0),
                                                       _num_symbols(desc))
        shared_first: dict[str, int] = {}  # a shared vocabulary -> the id of its value 0
        for key, desc in sorted(description.items()):
            name = key.replace(".", "__")
            vocabulary = desc.get("vocabulary")
            if desc["kind"] == "minigrid_image":
                num_values = [int(n) for n in desc["num_values"]]
                self._claim(name, key)
                self.embeds[name] = nn.Embedding(sum(num_values), EMBED_SIZE)
                self.register_buffer(f"offsets_{name}", torch.tensor([0, *num_values[:-1]]).cumsum(0),
                                     persistent=False)
                count = int(desc["shape"][0]) * int(desc["shape"][1])
                self._images.add(name)
                # a cell's value id (element_values): (object * colours + colour) * states + state
                radix = torch.tensor([num_values[1] * num_values[2], num_values[2], 1])
                self.register_buffer(f"radix_{name}", radix, persistent=False)
                values = num_values[0] * num_values[1] * num_values[2]
            elif vocabulary is not None:  # one table and one id range for every key that names it
                table = f"vocabulary__{vocabulary}"
                if vocabulary not in shared_first:
                    self._claim(table, key)
                    self.embeds[table] = nn.Embedding(shared_sizes[vocabulary], EMBED_SIZE)
                    shared_first[vocabulary] = self.vocab_size
                    self.vocab_size += shared_sizes[vocabulary]
                self._tables[name] = table
                count = 1 if desc["kind"] == "discrete" else len(desc["nvec"])
                values = 0  # counted with the vocabulary
            elif desc["kind"] == "multi_discrete":
                self._claim(name, key)
                self.embeds[name] = nn.Embedding(_num_symbols(desc), EMBED_SIZE)
                self._tables[name] = name
                count = len(desc["nvec"])
                values = _num_symbols(desc)
            else:
                continue
            first = shared_first[vocabulary] if vocabulary is not None else self.vocab_size
            self.register_buffer(f"first_value_{name}", torch.tensor(first), persistent=False)
            self.vocab_size += values
            self.queries[name] = nn.Linear(core_size, EMBED_SIZE)
            if policy_query:
                self.policy_queries[name] = nn.Linear(core_size, EMBED_SIZE)
            self.keys.append(key)
            self.first_element[key] = self.num_elements
            self.num_elements += count
        self.num_scores = self.num_elements * (2 if policy_query else 1)

    def _claim(self, table: str, key: str) -> None:
        """``ValueError`` if an embedding table named ``table`` exists already (a key's mangled name
        equal to another key's, or to a shared vocabulary's ``vocabulary__NAME``)."""
        if table in self.embeds:
            raise ValueError(f"observation {key!r} needs the embedding table {table!r}, which another "
                             "key or vocabulary already has; rename one of them")

    def element_embeddings(self, key: str, value: Tensor) -> Tensor:
        """``value [N, ...]`` of observation ``key`` -> ``[N, K, EMBED_SIZE]``, one row per element."""
        name = key.replace(".", "__")
        value = value.long()
        if name in self._images:
            cells = value.reshape(value.shape[0], -1, value.shape[-1]) + getattr(self, f"offsets_{name}")
            return self.embeds[name](cells).sum(-2)
        return self.embeds[self._tables[name]](value.reshape(value.shape[0], -1))

    def element_values(self, obs: dict[str, Tensor]) -> Tensor:
        """``obs {key: [N, ...]}`` -> ``[N, num_elements]`` int64: each element's value as one id below
        ``vocab_size`` (a cell's object, colour and state together; a slot's symbol), in the order of
        the scores. Equal ids are equal values of the same observation key, or of keys that share a
        vocabulary."""
        ids = []
        for key in self.keys:
            name = key.replace(".", "__")
            value = obs[key].long()
            if name in self._images:
                cells = value.reshape(value.shape[0], -1, value.shape[-1])
                value = (cells * getattr(self, f"radix_{name}")).sum(-1)
            ids.append(value.reshape(value.shape[0], -1) + getattr(self, f"first_value_{name}"))
        return torch.cat(ids, dim=-1)

    def forward(self, obs: dict[str, Tensor], y: Tensor) -> Tensor:
        scores, policy_scores = [], []
        for key in self.keys:
            name = key.replace(".", "__")
            elements = self.element_embeddings(key, obs[key])  # [N, K, E]
            scores.append(_dot(elements, self.queries[name](y)))
            if name in self.policy_queries:
                policy_scores.append(_dot(elements, self.policy_queries[name](y)))
        return torch.cat(scores + policy_scores, dim=-1)


def _dot(elements: Tensor, query: Tensor) -> Tensor:
    """``elements [N, K, E]``, ``query [N, E]`` -> scaled dot products ``[N, K]``."""
    return torch.einsum("nke,ne->nk", elements, query) / math.sqrt(EMBED_SIZE)


def _num_symbols(desc: dict) -> int:
    """The number of values of a ``discrete`` or ``multi_discrete`` description (its largest slot)."""
    return int(desc["n"]) if desc["kind"] == "discrete" else max(int(n) for n in desc["nvec"])
