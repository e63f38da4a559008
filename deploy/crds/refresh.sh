#!/usr/bin/env bash
# Makes the schemas in this folder again from their sources (PROVENANCE.md says which),
# for tests/unit/test_deploy_manifests.py. Not part of `make test`: the files are checked
# in, so the test needs no network. Run it to move to other versions, then update
# PROVENANCE.md (its checksums are printed at the end).
#
# Needs curl, unzip, python3, Maven, and Java 21 or newer for Strimzi's generator
# (JAVA: the java binary; the Temurin 25 of these machines by default).
set -euo pipefail
cd "$(dirname "$0")"
KEDA_VERSION="${KEDA_VERSION:-v2.21.1}"
STRIMZI_VERSION="${STRIMZI_VERSION:-1.2.0}"
JAVA="${JAVA:-/usr/lib/jvm/temurin-25-jdk-amd64/bin/java}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# KEDA: the Go module's zip from the module proxy holds the CRD as released, and the
# Kafka scaler, whose struct tags name the trigger's metadata.
module="github.com/kedacore/keda/v2@${KEDA_VERSION}"
curl -sSf -o "$work/keda.zip" "https://proxy.golang.org/github.com/kedacore/keda/v2/@v/${KEDA_VERSION}.zip"
unzip -q -o "$work/keda.zip" -d "$work" \
  "$module/config/crd/bases/keda.sh_scaledobjects.yaml" "$module/pkg/scalers/kafka_scaler.go"
cp "$work/$module/config/crd/bases/keda.sh_scaledobjects.yaml" .
# Each `keda:"name=...,order=...triggerMetadata..."` field of kafkaMetadata: its name, the
# Go type (a number or a boolean must parse as one) and its enum when it has one; and
# <name>FromEnv for a field read from the container's environment too (resolvedEnv).
python3 - "$work/$module/pkg/scalers/kafka_scaler.go" "$KEDA_VERSION" >keda-kafka-trigger.schema.json <<'PY'
import json, re, sys
source, version = open(sys.argv[1]).read(), sys.argv[2]
fields = re.findall(r'^\s*\w+\s+(\S+)\s+`keda:"([^"]*)"`', source, re.MULTILINE)
patterns = {"int64": "^-?[0-9]+$", "int": "^-?[0-9]+$", "bool": "^(true|false)$"}
properties = {}
for go_type, tag in fields:
    parts = dict(p.split("=", 1) for p in tag.split(",") if "=" in p)
    if "triggerMetadata" not in parts.get("order", "").split(";"):
        continue
    schema = {"type": "string"}
    if go_type in patterns:
        schema["pattern"] = patterns[go_type]
    if "enum" in parts:
        schema["enum"] = parts["enum"].split(";")
    properties[parts["name"]] = schema
    if "resolvedEnv" in parts["order"].split(";"):
        # The name of a variable of the scaled container that holds the value.
        properties[parts["name"] + "FromEnv"] = {"type": "string"}
print(json.dumps({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": f"KEDA {version} kafka trigger metadata (pkg/scalers/kafka_scaler.go)",
    "type": "object",
    "properties": properties,
    "additionalProperties": False,
}, indent=2))
PY

# Strimzi: its CRDs are generated at build time from the annotated classes of
# io.strimzi:api by io.strimzi:crd-generator (both on Maven Central), with the arguments
# of the api POM's `generate-crd-co-install-v1` execution; this runs the same.
cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local</groupId><artifactId>strimzi-crds</artifactId><version>0</version>
  <dependencies>
    <dependency><groupId>io.strimzi</groupId><artifactId>api</artifactId><version>${STRIMZI_VERSION}</version></dependency>
    <dependency><groupId>io.strimzi</groupId><artifactId>crd-generator</artifactId><version>${STRIMZI_VERSION}</version></dependency>
  </dependencies>
</project>
EOF
mvn -B -q -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$work/libs"
"$JAVA" -cp "$work/libs/*" io.strimzi.crdgenerator.CrdGenerator \
  --label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
  --crd-api-version v1 --api-versions v1 --storage-version v1 --yaml \
  io.strimzi.api.kafka.model.kafka.Kafka="$PWD"/040-Crd-kafka.yaml \
  io.strimzi.api.kafka.model.topic.KafkaTopic="$PWD"/043-Crd-kafkatopic.yaml \
  io.strimzi.api.kafka.model.nodepool.KafkaNodePool="$PWD"/045-Crd-kafkanodepool.yaml

sha256sum keda.sh_scaledobjects.yaml keda-kafka-trigger.schema.json 040-Crd-kafka.yaml \
  043-Crd-kafkatopic.yaml 045-Crd-kafkanodepool.yaml
