# ganforge on a CUDA machine:
#   docker build -t ganforge .
#   docker run --gpus all -v "$PWD:/work" ganforge        # `dvc repro` in the mounted repo
# The torch 2.14.1 wheel carries its own CUDA runtime, cuDNN and NCCL; the NVIDIA container
# toolkit mounts the host driver at `--gpus`, so a plain Python base image is enough and
# train.device: auto picks the GPU.
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/ganforge
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --upgrade pip && pip install .

# The pipeline runs in the mounted repository, where its git and DVC state live;
# the mount belongs to the host user, so tell git it is safe.
WORKDIR /work
RUN git config --global --add safe.directory /work
CMD ["dvc", "repro"]
