# The tfxp pipeline image: TFX 1.16.0 (the version requirements.lock pins) plus this package.
# Vertex AI Pipelines runs every component in it (the compiled spec names it as each step's image and gives
# the command), Vertex AI Training runs the Trainer in it, and Dataflow workers run in it
# (--sdk_container_image, cloud.dataflow.worker_code: image), so every step runs the same code.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/tfxp:TAG .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/tfxp:TAG
# (or: gcloud builds submit --tag REGION-docker.pkg.dev/PROJECT/REPO/tfxp:TAG .)
ARG PYTHON_VERSION=3.10
ARG BEAM_VERSION=2.59.0
FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION} AS beam
FROM tensorflow/tfx:1.16.0

WORKDIR /tfxp
# The package and what the pipeline reads at run time: configs/ holds the frozen schemas (FrozenSchemaGen
# reads /tfxp/configs/<name>.schema.pbtxt, see PipelineConfig.for_cloud).
COPY setup.py README.md ./
COPY config/ config/
COPY pipeline/ pipeline/
COPY components/ components/
COPY preprocessing/ preprocessing/
COPY trainer/ trainer/
COPY serving/ serving/
COPY configs/ configs/
# --no-deps: TFX and its libraries come from the base image; setup.py's only requirement is pyyaml.
RUN python -m pip install --no-cache-dir --no-deps . && python -m pip install --no-cache-dir "pyyaml>=6" \
    && python -c "import pipeline.pipeline, trainer.task, preprocessing.transform, components.quantizer.quantize"
ENV TF_USE_LEGACY_KERAS=1 PYTHONPATH=/tfxp

# Dataflow starts a custom worker container through the Beam SDK harness of the same Beam version as the
# image's apache-beam (2.59.0 with TFX 1.16; PYTHON_VERSION must be the image's Python: check with
# `docker run --rm --entrypoint python tensorflow/tfx:1.16.0 --version`). The pipeline steps do not use the
# entrypoint: the compiled spec gives `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`.
COPY --from=beam /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]
