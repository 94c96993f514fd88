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
from tfx.components.evaluator import constants as evaluator_constants
from tfx.dsl.components.common import resolver

from components.properties import BLESSED, AcceptedStatisticsProperties

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
    excluded = _candidate_ids(input_dict)
    model_id = evaluator_constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY
    blessings = {blessing.get_int_custom_property(model_id): blessing
                 for blessing in sorted(input_dict.get(MODEL_BLESSING, []), key=lambda a: a.id)
                 if blessing.get_int_custom_property(BLESSED) == 1}
    result: Dict[str, List[types.Artifact]] = {MODEL: [], MODEL_BLESSING: [],
                                               CANDIDATE: list(input_dict.get(CANDIDATE, []))}
    for model in sorted(input_dict.get(MODEL, []), key=lambda a: a.id, reverse=True):
        if model.id in blessings and model.id not in excluded:
            result[MODEL], result[MODEL_BLESSING] = [model], [blessings[model.id]]
            break
    return result


class LatestOtherAcceptedStatisticsStrategy(resolver.ResolverStrategy):
    """The latest AcceptedStatistics that the DataGate accepted for other statistics than the candidate's."""

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        return latest_other_accepted_statistics(input_dict)


def latest_other_accepted_statistics(input_dict: Dict[str, List[types.Artifact]]
                                     ) -> Dict[str, List[types.Artifact]]:
    excluded = _candidate_ids(input_dict)
    result: Dict[str, List[types.Artifact]] = {STATISTICS: [], CANDIDATE: list(input_dict.get(CANDIDATE, []))}
    for accepted in sorted(input_dict.get(STATISTICS, []), key=lambda a: a.id, reverse=True):
        if AcceptedStatisticsProperties.read(accepted.mlmd_artifact).statistics_id not in excluded:
            result[STATISTICS] = [accepted]
            break
    return result
