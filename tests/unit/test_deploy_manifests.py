"""deploy/k8s, the cluster's manifests, checked offline and against the code.

- Core kinds against the Kubernetes schemas kubernetes-validate bundles, strict (a field
  the API does not have is an error), for KUBERNETES: the versions KEDA v2.21 is tested on.
- KEDA's and Strimzi's kinds against their CRDs' openAPIV3Schema (deploy/crds, whose
  PROVENANCE.md says where each came from), made strict as the API server's field
  validation is; their metadata as any object's; a kafka trigger's metadata against the
  keys KEDA's scaler reads.
- Against the code: every variable is a setting and every process starts with its own
  (production's rules included); secrets come from the Secret alone; the KafkaTopics are
  the TopicSpecs those settings make; each worker role is deployed and scaled on the
  group it joins and the topics it reads, never past their partitions; the probes ask
  the processes' own routes; the grace periods cover the shutdown the settings allow.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Any, get_args
from unittest import mock

import jsonschema
import kubernetes_validate
import pytest
import yaml
from aiohttp.web import RouteDef
from pydantic import AliasChoices, SecretStr

from amplify_stream import cli
from amplify_stream.bus.kafka import KafkaBus
from amplify_stream.bus.kafka_topics import topic_configs
from amplify_stream.bus.memory import MemoryBus
from amplify_stream.config import Settings
from amplify_stream.gateway import health
from amplify_stream.topics import Topics
from consumers.probes import probe_app
from consumers.runtime import ROLES, running

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "k8s"
CRDS = ROOT / "deploy" / "crds"
KUBERNETES = ("1.34", "1.36")
SECRET = "amplify-secrets"
# Settings that hold a credential: the secret-typed ones, and the URLs of the database and
# of Redis (their passwords).
SECRET_SETTINGS = {
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in (get_args(field.annotation) or (field.annotation,))
} | {"database_url", "redis_url"}
# The processes that open the store (gateway/app.py, consumers/projector.py): without a
# URL each pod would keep a SQLite file of its own.
STORE_USERS = {"gateway", "projector"}
# The processes that count limits in Redis (gateway/limits.py, documents/call_slots.py):
# without it each counts alone, and a user spread over N of them gets N times a limit.
LIMIT_COUNTERS = {"gateway", "documents"}
CUSTOM_KINDS = {"ScaledObject", "Kafka", "KafkaNodePool", "KafkaTopic"}

Manifest = dict[str, Any]


def load(directory: Path) -> list[Manifest]:
    docs: list[Manifest] = []
    for path in sorted(directory.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    return docs


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return load(MANIFESTS)


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in manifests if doc["kind"] == kind]


def named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    (doc,) = (doc for doc in of_kind(manifests, kind) if doc["metadata"]["name"] == name)
    return doc


def where(doc: Manifest) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


# ------------------------------------------------------------------ the schemas


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every object closed to fields it does not list, as the API server's
    strict field validation rejects them, unless it keeps unknown fields. anyOf/oneOf/allOf
    branches only constrain (a structural schema declares its fields outside them)."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
        if not out.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = strict(out[key])
    return out


@cache
def crd_schemas() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """A validator for each served (apiVersion, kind) of the CRDs in deploy/crds."""
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["served"]:
                schema = strict(version["schema"]["openAPIV3Schema"])
                validator = jsonschema.Draft202012Validator(schema)
                validators[(f"{group}/{version['name']}", kind)] = validator
    return validators


@cache
def kafka_trigger_schema() -> jsonschema.protocols.Validator:
    schema = json.loads((CRDS / "keda-kafka-trigger.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def is_custom(doc: Manifest) -> bool:
    return (doc["apiVersion"], doc["kind"]) in crd_schemas()


def problems(doc: Manifest, version: str) -> list[str]:
    """What the API server (with KEDA's and Strimzi's CRDs) would refuse in ``doc``."""
    found: list[str] = []

    def core(resource: Manifest) -> None:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            found.append(f"{where(doc)}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            found.append(f"{where(doc)}: {exc.message}")

    if not is_custom(doc):
        core(doc)
        return found
    validator = crd_schemas()[(doc["apiVersion"], doc["kind"])]
    for error in validator.iter_errors(doc):
        found.append(f"{where(doc)}: {error.json_path}: {error.message}")
    # A custom resource's metadata is ObjectMeta, as a ConfigMap's is.
    core({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]})
    if doc["kind"] == "ScaledObject":
        for trigger in doc["spec"]["triggers"]:
            for error in kafka_trigger_schema().iter_errors(trigger.get("metadata", {})):
                found.append(f"{where(doc)}: trigger metadata: {error.message}")
    return found


@pytest.mark.parametrize("version", KUBERNETES)
def test_every_manifest_is_what_the_api_server_accepts(
    manifests: list[Manifest], version: str
) -> None:
    found = [problem for doc in manifests for problem in problems(doc, version)]
    assert found == [], "\n".join(found)
    core = {doc["kind"] for doc in manifests if not is_custom(doc)}
    custom = {doc["kind"] for doc in manifests if is_custom(doc)}
    assert core >= {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}, core
    assert custom == CUSTOM_KINDS


def renamed(doc: Manifest, path: str, new: str) -> Manifest:
    """A copy of ``doc`` with the field at ``path`` (dotted; a number is a list index)
    renamed to ``new``: a typo."""
    broken = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = broken
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[new] = node.pop(last)
    return broken


@pytest.mark.parametrize(
    ("kind", "name", "path", "typo"),
    [
        (
            "Deployment",
            "amplify-gateway",
            "spec.template.spec.terminationGracePeriodSeconds",
            "terminationGracePeriodSecond",
        ),
        ("Service", "amplify-gateway", "spec.ports.0.targetPort", "targetport"),
        ("ScaledObject", "amplify-enhancer", "spec.maxReplicaCount", "maxReplicasCount"),
        (
            "ScaledObject",
            "amplify-enhancer",
            "spec.triggers.0.metadata.lagThreshold",
            "lagTreshold",
        ),
        ("KafkaTopic", "amplify.stream.v1", "spec.partitions", "partition"),
        ("Kafka", "amplify", "spec.kafka.listeners.0.tls", "TLS"),
        ("KafkaNodePool", "brokers", "spec.replicas", "replica"),
        ("KafkaNodePool", "brokers", "metadata.labels", "label"),
    ],
)
def test_a_misspelt_field_is_refused(
    manifests: list[Manifest], kind: str, name: str, path: str, typo: str
) -> None:
    doc = named(manifests, kind, name)
    assert problems(doc, KUBERNETES[0]) == []
    assert problems(renamed(doc, path, typo), KUBERNETES[0]) != []


def test_nothing_names_a_namespace(manifests: list[Manifest]) -> None:
    assert [where(doc) for doc in manifests if "namespace" in doc["metadata"]] == []


# ------------------------------------------------------------ the processes


def deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Each Deployment by its component (gateway, enhancer...)."""
    found = of_kind(manifests, "Deployment")
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in found}


def container(deployment: Manifest) -> Manifest:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def environment(manifests: list[Manifest], container: Manifest) -> dict[str, Manifest]:
    """Each variable the container gets: ``{"value": ...}`` or its ``valueFrom``."""
    env: dict[str, Manifest] = {}
    for source in container.get("envFrom", []):
        config = named(manifests, "ConfigMap", source["configMapRef"]["name"])
        env |= {k: {"value": v} for k, v in config["data"].items()}
    for var in container.get("env", []):
        env[var["name"]] = {"value": var["value"]} if "value" in var else var["valueFrom"]
    return env


def env_name(setting: str) -> list[str]:
    alias = Settings.model_fields[setting].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"AMPLIFY_{setting.upper()}"]


SECRET_VALUES = {
    "jwt_secret": secrets.token_hex(32),
    "database_url": "postgresql+asyncpg://amplify@postgres/amplify",
    "gemini_api_key": "a-key",
    "redis_url": "redis://:password@redis:6379/0",
}


def settings_of(manifests: list[Manifest], container: Manifest, **overrides: str) -> Settings:
    """The settings the container's process builds from its environment (a secret's value
    stands in for what the Secret would hold), with ``overrides`` as more variables."""
    stand_ins = {name: SECRET_VALUES[s] for s in SECRET_SETTINGS for name in env_name(s)}
    env = {}
    for name, source in environment(manifests, container).items():
        env[name] = source["value"] if "value" in source else stand_ins[name]
    with mock.patch.dict(os.environ, env | overrides, clear=True):
        return Settings(_env_file=None)  # type: ignore[call-arg]


def test_every_variable_is_a_setting(manifests: list[Manifest]) -> None:
    known = {name for setting in Settings.model_fields for name in env_name(setting)}
    named_here = {k for config in of_kind(manifests, "ConfigMap") for k in config["data"]}
    for deployment in deployments(manifests).values():
        named_here |= {var["name"] for var in container(deployment).get("env", [])}
    assert named_here - known == set()


def test_the_partition_counts_are_pinned_not_left_to_the_defaults(
    manifests: list[Manifest],
) -> None:
    # A topic keeps the count it was made with (adding partitions moves keys): a default
    # that changes in a later release must not disagree with the topics already there.
    (config,) = of_kind(manifests, "ConfigMap")
    for setting in ("topic_partitions", "stream_partitions"):
        assert set(env_name(setting)) & set(config["data"]), setting


def test_every_process_is_a_command_of_the_image_with_its_settings(
    manifests: list[Manifest],
) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    (entrypoint,) = (
        json.loads(line.split(None, 1)[1]) for line in dockerfile if line.startswith("ENTRYPOINT")
    )
    assert entrypoint == ["amplify-stream"]
    images = set()
    for component, deployment in deployments(manifests).items():
        spec = container(deployment)
        images.add(spec["image"])
        assert "command" not in spec, component  # the image's entrypoint runs
        args = cli._parser().parse_args(spec["args"])
        assert component == (args.role if args.command == "worker" else args.command)
        settings = settings_of(manifests, spec)  # raises on what production refuses
        assert (settings.env, settings.bus) == ("production", "kafka"), component
    assert len(images) == 1, images  # one image for every process (the Dockerfile's)
    assert set(deployments(manifests)) == {"gateway", *ROLES}


def test_secrets_come_from_the_secret_only(manifests: list[Manifest]) -> None:
    secret_names = {name for setting in SECRET_SETTINGS for name in env_name(setting)}
    for config in of_kind(manifests, "ConfigMap"):
        assert secret_names & set(config["data"]) == set(), where(config)
    keys = set()
    for component, deployment in deployments(manifests).items():
        env = environment(manifests, container(deployment))
        for name, source in env.items():
            if name in secret_names:
                assert "secretKeyRef" in source, f"{component}: {name} inline"
            if "secretKeyRef" in source:
                assert source["secretKeyRef"]["name"] == SECRET
                keys.add(source["secretKeyRef"]["key"])
        if component in STORE_USERS:
            assert "AMPLIFY_DATABASE_URL" in env, component
        if component in LIMIT_COUNTERS:
            assert "AMPLIFY_REDIS_URL" in env, component
    assert of_kind(manifests, "Secret") == []  # made by the operator, never committed
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert [key for key in sorted(keys) if f"--from-literal={key}=" not in guide] == []


# ------------------------------------------------------------------- kafka


@pytest.fixture(scope="module")
def settings(manifests: list[Manifest]) -> Settings:
    """What the processes share: the gateway's settings (its bus's are every one's)."""
    return settings_of(manifests, container(deployments(manifests)["gateway"]))


def test_the_topics_are_the_codes_topic_specs(
    manifests: list[Manifest], settings: Settings
) -> None:
    specs = {spec.name: spec for spec in Topics.from_settings(settings).specs()}
    kafka = of_kind(manifests, "Kafka")[0]["metadata"]["name"]
    topics = {
        t["spec"].get("topicName", t["metadata"]["name"]): t
        for t in of_kind(manifests, "KafkaTopic")
    }
    assert set(topics) == set(specs)
    for name, topic in topics.items():
        spec = topic["spec"]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka, name
        assert spec["partitions"] == specs[name].partitions, name
        assert spec["replicas"] == 3, name
        config = {k: str(v) for k, v in spec["config"].items()}
        assert config == topic_configs(specs[name], replicas=3), name


def test_kafka_is_three_brokers_that_lose_no_acknowledged_write(
    manifests: list[Manifest], settings: Settings
) -> None:
    (kafka,) = of_kind(manifests, "Kafka")
    name = kafka["metadata"]["name"]
    pools = [
        pool
        for pool in of_kind(manifests, "KafkaNodePool")
        if pool["metadata"]["labels"]["strimzi.io/cluster"] == name
    ]
    assert sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"]) == 3
    assert sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"]) == 3
    config = kafka["spec"]["kafka"]["config"]
    assert config["min.insync.replicas"] == 2
    assert config["default.replication.factor"] == 3
    assert config["transaction.state.log.min.isr"] == 2
    assert "topicOperator" in kafka["spec"]["entityOperator"]  # reconciles the KafkaTopics
    # The bus speaks plaintext, to Strimzi's bootstrap Service for a listener.
    plain = [lis for lis in kafka["spec"]["kafka"]["listeners"] if not lis["tls"]]
    bootstrap = {f"{name}-kafka-bootstrap:{lis['port']}" for lis in plain}
    assert settings.kafka_bootstrap_servers in bootstrap


# ----------------------------------------------------------------- scaling


async def group_of(role: str, settings: Settings, data: Path) -> tuple[str, set[str]]:
    """The consumer group ``role``'s worker joins and the topics it reads, as it runs
    (on the memory bus, offline, with the manifests' settings otherwise)."""
    local = settings.model_copy(
        update={
            "bus": "memory",
            "data_dir": data,
            "audio_dir": data / "audio",
            "database_url": None,
            "speech_provider": "espeak",
            "enhancer_provider": "local",
        }
    )
    bus = MemoryBus(local)
    await bus.start()
    try:
        await bus.ensure_topics(Topics.from_settings(local).specs())
        async with running(role, bus, local) as worker:
            return worker.group_id, set(bus.group(worker.group_id).topics_read)
    finally:
        await bus.close()


def scaled_object_of(manifests: list[Manifest], deployment: Manifest) -> Manifest:
    name = deployment["metadata"]["name"]
    (scaled,) = (
        s for s in of_kind(manifests, "ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == name
    )
    assert scaled["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    return scaled


async def test_each_worker_scales_on_its_groups_lag_within_its_partitions(
    manifests: list[Manifest], settings: Settings, tmp_path: Path
) -> None:
    partitions = {spec.name: spec.partitions for spec in Topics.from_settings(settings).specs()}
    # Where KEDA counts a partition no member has committed as lag: as the consumers do.
    reset = KafkaBus(settings).group_consumer(["t"], "g")._config["auto_offset_reset"]
    for role in ROLES:
        deployment = deployments(manifests)[role]
        worker = settings_of(manifests, container(deployment))
        group, topics = await group_of(role, worker, tmp_path / role)
        spec = scaled_object_of(manifests, deployment)["spec"]
        triggers = [t["metadata"] for t in spec["triggers"]]
        assert {t["type"] for t in spec["triggers"]} == {"kafka"}
        # One trigger a topic, so that each is capped at its own topic's partitions.
        assert sorted((t["consumerGroup"], t["topic"]) for t in triggers) == sorted(
            (group, topic) for topic in topics
        ), role
        for trigger in triggers:
            assert trigger["bootstrapServers"] == worker.kafka_bootstrap_servers, role
            assert trigger["offsetResetPolicy"] == reset, role
            assert trigger.get("allowIdleConsumers", "false") == "false", role
        # More members than partitions would idle: one partition is the least a member has.
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], role
        assert spec["maxReplicaCount"] <= min(partitions[t] for t in topics), role


def test_gateways_scale_within_the_stream_partitions(
    manifests: list[Manifest], settings: Settings
) -> None:
    gateway = deployments(manifests)["gateway"]
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert gateway["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (hpa,) = of_kind(manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == gateway["metadata"]["name"]
    # A gateway's home slice is a share of the stream topic's partitions.
    assert hpa["spec"]["maxReplicas"] <= Topics.from_settings(settings).stream_partitions
    assert "replicas" not in gateway["spec"]  # the autoscaler's; apply would reset them
    (budget,) = of_kind(manifests, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    (service,) = of_kind(manifests, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in container(gateway)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
    for role in ROLES:
        assert "replicas" not in deployments(manifests)[role]["spec"], role  # KEDA's


# ------------------------------------------------------- probes and shutdown


def probe_paths(spec: Manifest) -> dict[str, tuple[str, Any]]:
    return {
        probe: (spec[probe]["httpGet"]["path"], spec[probe]["httpGet"]["port"])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }


def test_the_probes_ask_each_processs_own_routes(manifests: list[Manifest]) -> None:
    worker_routes = {
        resource.canonical
        for resource in probe_app(mock.sentinel.worker, mock.sentinel.task).router.resources()
    }
    gateway_routes = {route.path for route in health.routes if isinstance(route, RouteDef)}
    for component, deployment in deployments(manifests).items():
        spec = container(deployment)
        settings = settings_of(manifests, spec)
        serving, routes = (
            (settings.port, gateway_routes)
            if component == "gateway"
            else (settings.metrics_port, worker_routes)
        )
        ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
        probes = probe_paths(spec)
        assert {ports[port] for _, port in probes.values()} == {serving}, component
        assert probes["livenessProbe"][0] == probes["startupProbe"][0] == "/healthz"
        assert probes["readinessProbe"][0] == "/readyz", component
        assert {path for path, _ in probes.values()} <= routes, component
        assert {"/metrics"} <= routes
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert int(annotations["prometheus.io/port"]) == serving, component
    # The gateway's readiness waits for each of its checks.
    readiness = container(deployments(manifests)["gateway"])["readinessProbe"]
    assert readiness["timeoutSeconds"] > health.CHECK_TIMEOUT_S


def aiohttp_shutdown_timeout() -> float:
    """The gateway's ``web.run_app(shutdown_timeout=...)`` in cli.py."""
    tree = ast.parse(Path(cli.__file__).read_text())
    (value,) = (
        kw.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "shutdown_timeout"
    )
    return float(ast.literal_eval(value))


def test_grace_periods_cover_the_shutdown_the_settings_allow(manifests: list[Manifest]) -> None:
    for component, deployment in deployments(manifests).items():
        pod = deployment["spec"]["template"]["spec"]
        spec = container(deployment)
        settings = settings_of(manifests, spec)
        # Leaving the group and closing the clients: a Kafka request each, at most.
        closing = settings.kafka_request_timeout_ms / 1000
        if component == "gateway":
            # While the Service forgets it, then aiohttp's shutdown (sockets closed 1001).
            pre_stop = spec["lifecycle"]["preStop"]["sleep"]["seconds"]
            needed = pre_stop + aiohttp_shutdown_timeout() + closing
        else:
            needed = settings.worker_shutdown_grace_s + closing
        assert pod["terminationGracePeriodSeconds"] >= needed, component


def test_narrations_are_shared_by_the_narrators_and_the_gateways(
    manifests: list[Manifest],
) -> None:
    claims: dict[str, str] = {}
    for component in ("gateway", "narrator"):
        deployment = deployments(manifests)[component]
        spec = container(deployment)
        audio = str(settings_of(manifests, spec).effective_audio_dir)
        (mount,) = (m for m in spec["volumeMounts"] if m["mountPath"] == audio)
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        claims[component] = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    (claim,) = set(claims.values())
    assert named(manifests, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
