"""Every vocabulary of the preprocessing_fn computed in one tf.Transform analyzer: the same files as
tft.compute_and_apply_vocabulary, in one Beam pass instead of one chain of stages per vocabulary.

tf.Transform analyzes each `tft.vocabulary` on its own: accumulate, merge, count, prune (Top), order and write
(a Beam text write), each a few stages, ~14 of the taxi Transform's 94 Beam stages per vocabulary, whatever
the data size. Here one `tft.experimental.ptransform_analyzer` takes every vocabulary's per-batch token
counts (batch_token_counts: what TFT's `reduce_batch_weighted_counts` gives for unit weights, with its filter
of empty tokens and tokens holding a newline), sums them per token in one CombineGlobally, and writes every
file in one step: 26 stages for the taxi Transform.

What it writes is what tf.Transform writes for a unit-weighted vocabulary (preprocessing.transform's
apply_vocabulary): tokens by count, largest first, ties broken by the larger token (TFT's Top / sort of
(count, token) pairs); top_k cuts the same list; an empty vocabulary holds TFT's one dummy token; the file
is registered in the asset map under the same name and looked up by tft.apply_vocabulary. Counts
are float64 sums of the batch counts (exact to 2**53); TFT's are float32 sums, exact to 2**24 (~16.8M
occurrences of one token): above that TFT's own order depends on the order it adds in. Not registered: the
vocabulary size that tft.vocabulary binds as a tensor for `tft.experimental.get_vocabulary_size_by_name`
inside a preprocessing_fn (tfxp's does not ask; ptransform_analyzer makes every output of an analyzer with
file outputs a file). `TFTransformOutput.vocabulary_size_by_name` counts the file, for both.

Not cacheable per span: with spans, tf.Transform's analyzer cache is on and the per-vocabulary analyzers,
whose accumulators it caches, are used instead (config: `CustomConfig.one_pass_vocabularies`).
"""
from __future__ import annotations

import heapq
import os
import uuid
from collections import Counter
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform import analyzers

FILE_FORMAT = "text"  # tft.vocabulary's default file format


class VocabularySpec(NamedTuple):
    """One vocabulary: its file name (as tft.vocabulary's vocab_filename), top_k (None: every token) and the
    OOV buckets of its lookup."""
    name: str
    top_k: Optional[int]
    num_oov_buckets: int


def ordered_tokens(counts: Dict[bytes, float], top_k: Optional[int]) -> List[Tuple[float, bytes]]:
    """(count, token) pairs as tf.Transform writes them: largest first (count, then token), the first top_k,
    or TFT's dummy entry when none is left."""
    pairs = ((count, token) for token, count in counts.items())
    ordered = sorted(pairs, reverse=True) if top_k is None else heapq.nlargest(top_k, pairs)
    return ordered or [analyzers.get_empy_vocabulary_dummy_value(tf.string)]


class _TokenCounts(beam.CombineFn):
    """Per vocabulary, {token: summed count} over batches of (unique tokens, counts) array pairs (a batch's
    tokens are unique: batch_token_counts)."""

    def __init__(self, vocabularies: int):
        self._vocabularies = vocabularies

    def create_accumulator(self) -> List[Counter]:
        return [Counter() for _ in range(self._vocabularies)]

    def add_input(self, accumulator, batch):
        for counts, tokens, weights in zip(accumulator, batch[0::2], batch[1::2]):
            counts.update(dict(zip(tokens.tolist(), weights.tolist())))
        return accumulator

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for other in accumulators:
            for counts, more in zip(merged, other):
                counts.update(more)
        return merged

    def extract_output(self, accumulator):
        return accumulator


class OnePassVocabularies(tft_beam.experimental.PTransformAnalyzer):
    """The analyzer: batches of (tokens, counts) per vocabulary in; per vocabulary a single-element
    PCollection out, the written file's path."""

    def __init__(self, specs: Sequence[VocabularySpec]):
        super().__init__()
        self._specs = tuple(specs)

    def expand(self, batches):
        specs, directory = self._specs, self.base_temp_dir

        def write(counts_per_vocabulary) -> List[np.ndarray]:
            outputs = []
            for spec, counts in zip(specs, counts_per_vocabulary):
                tokens = ordered_tokens(counts, spec.top_k)
                path = os.path.join(directory, analyzers.sanitized_vocab_filename(spec.name))
                write_atomically(path, b"".join(token + b"\n" for _, token in tokens))
                outputs.append(np.array(path.encode()))
            return outputs

        written = (batches | "CountTokens" >> beam.CombineGlobally(_TokenCounts(len(specs)))
                   | "OrderAndWrite" >> beam.Map(write))
        return tuple(written | f"Output[{index}]" >> beam.Map(lambda outputs, index=index: outputs[index])
                     for index in range(len(specs)))


def write_atomically(path: str, content: bytes) -> None:
    """The file whole or not at all (a retried bundle rewrites it): written beside, then renamed. Local or
    remote (tf.io.gfile); also StatisticsGen's one-pass statistics file."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    partial = f"{path}.partial-{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(partial, "wb") as f:
        f.write(content)
    tf.io.gfile.rename(partial, path, overwrite=True)


def batch_token_counts(text: tf.Tensor, filter_regex: str) -> List[tf.Tensor]:
    """A batch's unique tokens (those `filter_regex` does not match) and each one's count as float32: what
    tf_utils.reduce_batch_weighted_counts(text, weights=1.0, filter_regex) gives, in the same order (the
    first occurrence's), with the same float32 counts (sums of 1.0 are exact to 2**24, far above a batch).

    TFT filters with two tf.boolean_mask (27 graph ops each, on the tokens and on their weights) and sums
    the unit weights per token; here one tf.where and gather, and tf.unique_with_counts' counts: ~10 ops a
    vocabulary instead of ~60, in every trace, graph import and session of the Transform."""
    flat = tf.reshape(text, [-1])
    kept = tf.gather(flat, tf.reshape(tf.where(tf.logical_not(tf.strings.regex_full_match(flat, filter_regex))),
                                      [-1]))
    unique, _, counts = tf.unique_with_counts(kept)
    return [unique, tf.cast(counts, tf.float32)]


def compute_and_apply_vocabularies(texts: Sequence[tf.Tensor], specs: Sequence[VocabularySpec],
                                   name: str = "one_pass_vocabularies") -> List[tf.Tensor]:
    """tft.compute_and_apply_vocabulary(text, top_k, num_oov_buckets, vocab_filename, weights=1.0) for every
    (text, spec) pair, analyzed in one pass: the ids of each text's tokens, int64 (-1 never: OOV tokens get
    a bucket when num_oov_buckets > 0)."""
    if not specs:
        return []
    with tf.compat.v1.name_scope(name):
        filter_regex = analyzers.get_vocab_newline_characters_regex(tf.string, FILE_FORMAT)
        counts = []
        for text in texts:
            counts += batch_token_counts(text, filter_regex)
        dummy = analyzers.get_empy_vocabulary_dummy_value(tf.string)[1]
        paths = tft.experimental.ptransform_analyzer(
            counts, OnePassVocabularies(specs), output_dtypes=[tf.string] * len(specs),
            output_shapes=[[]] * len(specs), output_asset_default_values=[dummy] * len(specs))
        ids = []
        for text, spec, path in zip(texts, specs, paths):
            # As tft.vocabulary registers its file: the asset map entry under the name it was given.
            analyzers.register_vocab(analyzers.sanitized_vocab_filename(spec.name), vocabulary_key=spec.name,
                                     file_format=FILE_FORMAT)
            ids.append(tft.apply_vocabulary(text, path, default_value=-1, num_oov_buckets=spec.num_oov_buckets,
                                            file_format=FILE_FORMAT))
        return ids
