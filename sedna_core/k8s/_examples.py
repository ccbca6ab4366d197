"""Example job files, one per kind (``sedna k8s example KIND`` prints them).

They follow Sedna's own examples (helmet detection, surface-defect detection, ATCII thermal
comfort) so that the exported manifests can be compared with Sedna's documentation.
"""

from __future__ import annotations

from sedna_core.k8s._jobfile import job_kind

__all__ = ["EXAMPLES", "example"]

_JOINT_INFERENCE = """\
# Joint inference: a little model on the edge, a big one in the cloud (Sedna's helmet example).
kind: JointInferenceService
name: helmet-detection-inference
namespace: default
image: registry.example.com/helmet-detection:0.1   # default image of every worker
backend: keras                                      # -> BACKEND_TYPE
security:
  # a Secret holding the bearer token every worker shares:
  #   kubectl create secret generic sedna-token --from-literal=token=$(openssl rand -hex 32)
  tokenSecret: {name: sedna-token, key: token}
models:
  helmet-detection-inference-little-model:
    url: /data/little-model/little.keras
    format: keras
  helmet-detection-inference-big-model:
    url: /data/big-model/big.keras
    format: keras
edgeWorker:
  node: edge-node
  model: helmet-detection-inference-little-model
  hardExampleMining:
    name: IBT
    parameters: {threshold_img: 0.9, threshold_box: 0.9}
  cloudTimeout: 1.0          # -> SEDNA_CLOUD_TIMEOUT: seconds before answering with the edge result
  command: [python, edge_inference.py]
  env: {input_shape: "416,736", video_url: rtsp://localhost/video}
  volumes:
    - {hostPath: /joint_inference/output, mountPath: /home/data/output}
  resources:
    limits: {memory: 2Gi}
cloudWorker:
  node: cloud-node
  model: helmet-detection-inference-big-model
  command: [python, big_model_service.py]
  env: {input_shape: "544,544"}
  resources:
    requests: {memory: 2Gi}
"""

_FEDERATED = """\
# Federated learning: one aggregation server, one training worker per edge node.
kind: FederatedLearningJob
name: surface-defect-detection
image: registry.example.com/surface-defect:0.1
backend: keras
security:
  tokenSecret: {name: sedna-token, key: token}
models:
  surface-defect-detection-model:
    url: /model
    format: keras
datasets:
  edge1-surface-defect-detection-dataset:
    url: /data/1.txt
    format: txt
    node: edge1
  edge2-surface-defect-detection-dataset:
    url: /data/2.txt
    format: txt
    node: edge2
aggregationWorker:
  model: surface-defect-detection-model
  aggregation: FedAvg        # -> AGGREGATION_ALGORITHM
  exitRound: 3               # -> EXIT_ROUND
  # participantsCount defaults to the number of training workers (-> PARTICIPANTS_COUNT)
  command: [python, aggregate.py]
trainingWorkers:
  - dataset: edge1-surface-defect-detection-dataset
    node: edge1
    command: [python, train.py]
    env: {batch_size: "32", learning_rate: "0.001", epochs: "2"}
  - dataset: edge2-surface-defect-detection-dataset
    node: edge2
    command: [python, train.py]
    env: {batch_size: "32", learning_rate: "0.001", epochs: "2"}
"""

_INCREMENTAL = """\
# Incremental learning: train, evaluate and deploy workers; Sedna's controller runs the cycle.
kind: IncrementalLearningJob
name: helmet-detection-demo
image: registry.example.com/helmet-incremental:0.1
models:
  initial-model: {url: /models/base_model, format: keras}
  deploy-model: {url: /models/deploy_model/model.keras, format: keras}
datasets:
  incremental-dataset:
    url: /data/helmet_detection/train_data/train_data.txt
    format: txt
    node: edge-node
dataset: {name: incremental-dataset, trainProb: 0.8}
initialModel: initial-model
outputDir: /output
trainSpec:
  node: edge-node
  command: [python, train.py]
  env: {batch_size: "32", epochs: "1", input_shape: "352,640", class_names: "person,helmet"}
  trigger:
    checkPeriodSeconds: 60
    timer: {start: "02:00", end: "20:00"}
    condition: {operator: ">", threshold: 500, metric: num_of_samples}
evalSpec:
  node: edge-node
  command: [python, eval.py]
deploySpec:
  node: edge-node
  model: deploy-model
  hotUpdate: true
  pollPeriodSeconds: 60
  hardExampleMining:
    name: IBT
    parameters: {threshold_img: 0.9, threshold_box: 0.9}
  trigger:
    condition: {operator: ">", threshold: 0.1, metric: precision_delta}
  command: [python, inference.py]
  volumes:
    - {hostPath: /incremental_learning/video, mountPath: /video}
"""

_LIFELONG = """\
# Lifelong learning (Sedna's ATCII thermal-comfort example).
kind: LifelongLearningJob
name: atcii-classifier-demo
image: registry.example.com/atcii:0.1
backend: sklearn
knowledgeBase: {url: "http://kb.sedna:9020"}   # -> KB_SERVER on every worker
security:
  tokenSecret: {name: sedna-token, key: token}   # the knowledge base's token
datasets:
  lifelong-dataset: {url: /data/trainData.csv, format: csv, node: edge-node}
dataset: {name: lifelong-dataset, trainProb: 0.8}
outputDir: /output
trainSpec:
  node: edge-node
  command: [python, train.py]
  env: {attribute: "Season,Cooling startegy_building level"}
  trigger:
    checkPeriodSeconds: 60
    condition: {operator: ">", threshold: 500, metric: num_of_samples}
evalSpec:
  node: edge-node
  command: [python, eval.py]
  env: {metrics: precision_score}
deploySpec:
  node: edge-node
  command: [python, inference.py]
  env: {infer_dataset_url: /data/testData.csv}
  volumes:
    - {hostPath: /lifelong/data, mountPath: /data, readOnly: true}
"""

#: canonical kind -> example job file text
EXAMPLES = {
    "JointInferenceService": _JOINT_INFERENCE,
    "FederatedLearningJob": _FEDERATED,
    "IncrementalLearningJob": _INCREMENTAL,
    "LifelongLearningJob": _LIFELONG,
}


def example(kind: str) -> str:
    """The example job file of ``kind`` (any spelling ``job_kind`` accepts)."""
    return EXAMPLES[job_kind(kind)]
