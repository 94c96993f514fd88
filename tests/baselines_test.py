"""The baseline resolvers never resolve the run's own candidate (components/baselines.py); the re-run that
this makes fully cached is checked end to end in pipeline_e2e_test.py."""
from tfx.types import standard_artifacts

from components import baselines
from components.data_gate.component import AcceptedStatistics
from components.properties import AcceptedStatisticsProperties


def artifact(kind, artifact_id, **int_properties):
    made = kind()
    made.id = artifact_id
    for name, value in int_properties.items():
        made.set_int_custom_property(name, value)
    return made


def models_and_blessings(blessed_ids, all_ids):
    models = [artifact(standard_artifacts.Model, i) for i in all_ids]
    blessings = [artifact(standard_artifacts.ModelBlessing, 100 + i, blessed=int(i in blessed_ids),
                          current_model_id=i) for i in all_ids]
    return models, blessings


def resolve_model(models, blessings, candidate_ids):
    candidates = [m for m in models if m.id in candidate_ids]
    result = baselines.latest_blessed_other_model(
        {baselines.MODEL: models, baselines.MODEL_BLESSING: blessings, baselines.CANDIDATE: candidates})
    assert result[baselines.CANDIDATE] == candidates
    return [m.id for m in result[baselines.MODEL]], [b.id for b in result[baselines.MODEL_BLESSING]]


def test_the_latest_blessed_model_other_than_the_candidate():
    models, blessings = models_and_blessings(blessed_ids={1, 3}, all_ids=[1, 2, 3, 4])
    assert resolve_model(models, blessings, {4}) == ([3], [103])  # a new candidate: the latest blessed
    assert resolve_model(models, blessings, {3}) == ([1], [101])  # a cached candidate: not itself
    assert resolve_model(models, blessings, {1}) == ([3], [103])  # older data re-run: the newer model
    assert resolve_model(models, blessings, set()) == ([3], [103])


def test_no_other_blessed_model_resolves_nothing():
    models, blessings = models_and_blessings(blessed_ids={1}, all_ids=[1, 2])
    assert resolve_model(models, blessings, {1}) == ([], [])
    assert resolve_model([], [], set()) == ([], [])


def accepted(artifact_id, statistics_id):
    made = artifact(AcceptedStatistics, artifact_id)
    if statistics_id is not None:
        AcceptedStatisticsProperties(statistics_id=statistics_id).write(made)
    return made


def resolve_statistics(accepted_list, candidate_id):
    candidate = artifact(standard_artifacts.ExampleStatistics, candidate_id)
    result = baselines.latest_other_accepted_statistics(
        {baselines.STATISTICS: accepted_list, baselines.CANDIDATE: [candidate]})
    return [a.id for a in result[baselines.STATISTICS]]


def test_the_latest_accepted_statistics_other_than_the_candidates():
    history = [accepted(10, statistics_id=1), accepted(11, statistics_id=2)]
    assert resolve_statistics(history, candidate_id=3) == [11]
    assert resolve_statistics(history, candidate_id=2) == [10]  # cached statistics: not themselves
    assert resolve_statistics(history[1:], candidate_id=2) == []
    # Accepted before the property existed: kept as a baseline.
    assert resolve_statistics([accepted(9, statistics_id=None)], candidate_id=2) == [9]
