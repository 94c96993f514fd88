"""Resolver strategies for the baselines a run compares against: never the run's own candidate.

TFX's LatestBlessedModelStrategy and LatestArtifactStrategy resolve the latest blessed model and the latest
accepted statistics. On a re-run whose Trainer (or StatisticsGen) comes from cache, those are the run's own
candidate: the Evaluator would evaluate a model against itself, and the DataGate compare the statistics with
themselves, comparisons that decide nothing and that, because their inputs differ from the first run's,
execute again instead of coming from cache. These strategies take the candidate as an extra input and
resolve the latest baseline *other than* it. A re-run with nothing new then has the first run's inputs
exactly, so the Evaluator, the DataGate and the Pusher come from cache; a re-run of older data after a newer
model was blessed compares with that newer model, as it should.

Local runs only: Kubeflow V2 / Vertex compile just TFX's two strategies (pipeline/pipeline.py picks).
"""
from __future__ import annotations

from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy

from components.properties import AcceptedStatisticsProperties

# Input (and output) keys of the resolvers; the baseline's own keys are TFX's usual ones.
CANDIDATE = "candidate"
MODEL = "model"
MODEL_BLESSING = "model_blessing"
STATISTICS = "statistics"


def _candidate_ids(input_dict: Dict[str, List[types.Artifact]]) -> set:
    return {artifact.id for artifact in input_dict.get(CANDIDATE, [])}


class LatestBlessedOtherModelStrategy(resolver.ResolverStrategy):
    """The latest blessed Model that is not the candidate, and its ModelBlessing (or nothing)."""

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        return latest_blessed_other_model(input_dict)


def latest_blessed_other_model(input_dict: Dict[str, List[types.Artifact]]) -> Dict[str, List[types.Artifact]]:
    """TFX's LatestBlessedModelStrategy over the models other than the candidate."""
    excluded = _candidate_ids(input_dict)
    others = {MODEL: [model for model in input_dict.get(MODEL, []) if model.id not in excluded],
              MODEL_BLESSING: list(input_dict.get(MODEL_BLESSING, []))}
    resolved = LatestBlessedModelStrategy().resolve_artifacts(None, others)
    return dict(resolved, **{CANDIDATE: list(input_dict.get(CANDIDATE, []))})


class LatestOtherAcceptedStatisticsStrategy(resolver.ResolverStrategy):
    """The latest AcceptedStatistics that the DataGate accepted for other statistics than the candidate's."""

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        return latest_other_accepted_statistics(input_dict)


def latest_other_accepted_statistics(input_dict: Dict[str, List[types.Artifact]]
                                     ) -> Dict[str, List[types.Artifact]]:
    """TFX's LatestArtifactStrategy over the accepted statistics other than the candidate's."""
    excluded = _candidate_ids(input_dict)
    others = [accepted for accepted in input_dict.get(STATISTICS, [])
              if AcceptedStatisticsProperties.read(accepted.mlmd_artifact).statistics_id not in excluded]
    resolved = LatestArtifactStrategy().resolve_artifacts(None, {STATISTICS: others}) or {STATISTICS: []}
    return dict(resolved, **{CANDIDATE: list(input_dict.get(CANDIDATE, []))})
