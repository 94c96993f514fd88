"""pipeline/input_resolution.py: TFX's channel resolution with one ML Metadata query per channel gives the
same executions as TFX's own intersection. The pipeline tests (pipeline_e2e: a run, then a cached re-run
that must take every step from cache) run under it through the local runner."""
import itertools

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration.portable.input_resolution import channel_resolver

from pipeline.input_resolution import REPLACED, executions_in_all_contexts, one_query_per_channel


def _store_with_history():
    """Three runs of a two-node pipeline: contexts pipeline, run-1..3, node-a, node-b; every execution is in
    the pipeline's, its run's and its node's context."""
    config = metadata_store_pb2.ConnectionConfig()
    config.fake_database.SetInParent()
    store = mlmd.MetadataStore(config)
    context_type = store.put_context_type(metadata_store_pb2.ContextType(name="kind"))
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="step"))
    names = ["pipeline", "run-1", "run-2", "run-3", "node-a", "node-b"]
    ids = store.put_contexts([metadata_store_pb2.Context(type_id=context_type, name=n) for n in names])
    contexts = {name: store.get_contexts_by_id([i])[0] for name, i in zip(names, ids)}
    for run, node in itertools.product(["run-1", "run-2", "run-3"], ["node-a", "node-b"]):
        [execution] = store.put_executions([metadata_store_pb2.Execution(type_id=execution_type)])
        store.put_attributions_and_associations(
            [], [metadata_store_pb2.Association(context_id=contexts[c].id, execution_id=execution)
                 for c in ("pipeline", run, node)])
    # One execution outside the pipeline's context, in run-2 and node-a.
    [stray] = store.put_executions([metadata_store_pb2.Execution(type_id=execution_type)])
    store.put_attributions_and_associations(
        [], [metadata_store_pb2.Association(context_id=contexts[c].id, execution_id=stray)
             for c in ("run-2", "node-a")])
    return store, contexts


def test_the_same_executions_as_tfx_s_intersection_for_every_combination_of_contexts():
    store, contexts = _store_with_history()
    original = getattr(channel_resolver, REPLACED)
    for size in range(0, 4):
        for names in itertools.permutations(contexts, size):
            chosen = [contexts[n] for n in names]
            expected = sorted(e.id for e in original(store, chosen))
            got = executions_in_all_contexts(store, chosen)
            assert sorted(e.id for e in got) == expected, names
            assert all(isinstance(e, metadata_store_pb2.Execution) for e in got)
    # A pipeline run's channel (pipeline, run, producer node): the one execution of that node in that run.
    [execution] = executions_in_all_contexts(store, [contexts["pipeline"], contexts["run-2"], contexts["node-a"]])
    assert execution.id == 3


def test_installed_for_the_block_only():
    original = getattr(channel_resolver, REPLACED)
    with one_query_per_channel() as installed:
        assert installed is True and getattr(channel_resolver, REPLACED) is executions_in_all_contexts
    assert getattr(channel_resolver, REPLACED) is original
